"""Serve a WSGI app (an emulated BMC) on a TCP port in a background thread, with TLS when given a certificate."""

from __future__ import annotations

import logging
import ssl
import threading
from pathlib import Path
from typing import Any

LOG = logging.getLogger(__name__)


def _quiet_handler() -> type:
    from werkzeug.serving import WSGIRequestHandler

    class Quiet(WSGIRequestHandler):
        """No access log; errors go to the debug log."""

        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

        def log(self, type: str, message: str, *args: Any) -> None:
            LOG.debug(message, *args)

    return Quiet


class WsgiServer:
    """werkzeug's threaded server around ``app``; ``port=0`` picks a free port (see ``url``)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0,
                 cert: tuple[Path, Path] | None = None, poll_interval: float = 0.05) -> None:
        self.app = app
        self.poll_interval = poll_interval
        self.host = host
        self.port = port
        self.cert = cert
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.cert else 'http'}://{self.host}:{self.port}"

    def start(self) -> WsgiServer:
        from werkzeug.serving import make_server

        context = None
        if self.cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(self.cert[0]), str(self.cert[1]))
        self._server = make_server(self.host, self.port, self.app, threaded=True, ssl_context=context,
                                   request_handler=_quiet_handler())
        self._server.daemon_threads = True
        self.port = self._server.server_port
        server, interval = self._server, self.poll_interval
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
