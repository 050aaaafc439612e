"""Serve a WSGI app (an emulated BMC) on a TCP port in a background thread, with TLS when given a certificate.

The server is bitten.lab.httpserve's (TCP_NODELAY, TLS handshakes in the connection's thread) with the standard
library's WSGI handler (wsgiref) speaking HTTP/1.1 with persistent connections, as BMCs do: an iLO keeps a client's
connection open between requests, and a client that reuses it pays one TLS handshake per run instead of one per
request. werkzeug's development server cannot: it closes every connection after one answer. A connection stays
open while answers carry a Content-Length (every JSON answer here does); request bodies are read to their end
before the next request line; an idle connection is closed after ``IDLE_TIMEOUT`` seconds. The app finds the
connection's socket under ``environ["bitten.socket"]`` (fault injection resets it).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler

from bitten.lab.httpserve import Server, serve

LOG = logging.getLogger(__name__)
#: seconds an idle persistent connection is kept
IDLE_TIMEOUT = 30.0


class _Body:
    """A request body of known length: the app reads what it wants, the rest is drained before the next request."""

    def __init__(self, stream: Any, length: int) -> None:
        self._stream = stream
        self._left = length

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > self._left:
            size = self._left
        data: bytes = self._stream.read(size) if size else b""
        self._left -= len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        limit = self._left if size is None or size < 0 else min(size, self._left)
        data: bytes = self._stream.readline(limit) if limit else b""
        self._left -= len(data)
        return data

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Any:
        return iter(self.readline, b"")

    def drain(self) -> None:
        while self._left and self.read(min(self._left, 65536)):
            pass


class _Answer(ServerHandler):
    """wsgiref's handler, speaking HTTP/1.1; remembers whether the answer carried a length (and no error)."""

    http_version = "1.1"
    #: the app sees its request, not this process's environment (which may hold credentials)
    os_environ: dict[str, str] = {}  # noqa: RUF012 - wsgiref's class attribute, never mutated
    failed = False
    framed = False

    def log_exception(self, exc_info: Any) -> None:
        self.failed = True
        LOG.debug("error in the WSGI app", exc_info=exc_info)

    def close(self) -> None:
        headers = getattr(self, "headers", None)
        self.framed = bool(headers is not None and headers.get("Content-Length") is not None)
        super().close()


class _Handler(WSGIRequestHandler):
    """One connection: requests until the client or the answer ends it (BaseHTTPRequestHandler's loop)."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT

    def handle(self) -> None:
        self.close_connection = True
        try:
            self.handle_one_request()
            while not self.close_connection:
                self.handle_one_request()
        except (OSError, ValueError) as exc:  # the client went away, or an idle connection timed out
            LOG.debug("connection from %s ended: %s", self.client_address, exc)

    def handle_one_request(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline:
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.send_error(414)
            self.close_connection = True
            return
        if not self.parse_request():
            self.close_connection = True
            return
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.send_error(411, "a request body needs a Content-Length")
            self.close_connection = True
            return
        body = _Body(self.rfile, int(self.headers.get("Content-Length") or 0))
        environ = self.get_environ()
        environ["wsgi.input"] = body
        environ["bitten.socket"] = self.connection
        answer = _Answer(body, self.wfile, self.get_stderr(), environ, multithread=True)  # type: ignore[arg-type]
        answer.request_handler = self  # type: ignore[attr-defined] # wsgiref's ServerHandler logs through it
        answer.run(self.server.app)  # type: ignore[attr-defined]
        if answer.failed or not answer.framed:
            self.close_connection = True
            return
        body.drain()
        self.wfile.flush()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug(format, *args)


class _WsgiServer(Server):
    app: Any = None
    base_environ: dict[str, Any]

    def server_bind(self) -> None:
        super().server_bind()
        host, port = self.server_address[:2]
        self.base_environ = {"SERVER_NAME": str(host), "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PORT": str(port),
                             "REMOTE_HOST": "", "CONTENT_LENGTH": "", "SCRIPT_NAME": ""}


class WsgiServer:
    """``app`` served in a thread; ``port=0`` picks a free port (see ``url``)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0,
                 cert: tuple[Path, Path] | None = None, poll_interval: float = 0.05) -> None:
        self.app = app
        self.poll_interval = poll_interval
        self.host = host
        self.port = port
        self.cert = cert
        self._server: _WsgiServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.cert else 'http'}://{self.host}:{self.port}"

    def start(self) -> WsgiServer:
        certfile, keyfile = (str(self.cert[0]), str(self.cert[1])) if self.cert else (None, None)
        server = serve(_Handler, self.host, self.port, certfile=certfile, keyfile=keyfile, server_class=_WsgiServer)
        assert isinstance(server, _WsgiServer)
        server.app = self.app
        self._server = server
        self.port = server.server_address[1]
        interval = self.poll_interval
        self._thread = threading.Thread(target=lambda: server.serve_forever(poll_interval=interval),
                                        name=f"wsgi-{self.port}", daemon=True)
        self._thread.start()
        return self

    def wait(self) -> None:
        """Block until stopped or interrupted (foreground services)."""
        assert self._thread is not None
        try:
            while self._thread.is_alive():
                self._thread.join(1.0)
        except KeyboardInterrupt:
            pass

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> WsgiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
