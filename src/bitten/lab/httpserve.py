"""The lab's one HTTP(S) server (standard library, one thread per connection), under the mockup, the simulators and
the emulated BMCs (bitten.lab.serve runs WSGI apps on it).

What it does that a bare ThreadingHTTPServer does not, because the BMC and CDU stand-ins are measured against:
TCP_NODELAY on every connection (headers and body go out at once, not 40 ms apart by Nagle and delayed ACKs), and
the TLS handshake in the connection's own thread (one slow client never holds up the others' accepts).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOG = logging.getLogger(__name__)
#: seconds a client may take for its TLS handshake
HANDSHAKE_TIMEOUT = 10.0


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        try:
            if isinstance(request, ssl.SSLSocket):
                request.settimeout(HANDSHAKE_TIMEOUT)
                try:
                    request.do_handshake()
                except (OSError, ssl.SSLError) as exc:
                    LOG.debug("TLS handshake with %s failed: %s", client_address, exc)
                    return
                request.settimeout(None)
            super().finish_request(request, client_address)
        finally:
            with self._open_lock:
                self._open.discard(request)

    def server_close(self) -> None:
        """Stop listening and end the connections still open (a stopped service answers nobody)."""
        super().server_close()
        with self._open_lock:
            live = list(self._open)
        for sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        LOG.debug("error while serving %s", client_address, exc_info=True)


def serve(handler: type[BaseHTTPRequestHandler], host: str, port: int, *, certfile: str | None = None,
          keyfile: str | None = None, server_class: type[Server] = Server) -> Server:
    """Bind (port 0: any free port) and wrap in TLS when a certificate is given; call serve_forever yourself."""
    server = server_class((host, port), handler)
    if certfile:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    return server


def in_thread(server: Server, poll_interval: float = 0.05) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": poll_interval},
                              name=f"http-{server.server_address[1]}", daemon=True)
    thread.start()
    return thread


def base_url(server: Server, scheme: str = "http") -> str:
    host, port = server.server_address[:2]
    return f"{scheme}://{host!s}:{port}"
