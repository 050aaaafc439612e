"""A small threaded HTTP(S) server for the mockup and the simulator (standard library, one thread per client)."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(handler: type[BaseHTTPRequestHandler], host: str, port: int, *, certfile: str | None = None,
          keyfile: str | None = None) -> Server:
    """Bind (port 0: any free port) and wrap in TLS when a certificate is given; call serve_forever yourself."""
    server = Server((host, port), handler)
    if certfile:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


def in_thread(server: Server) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"http-{server.server_address[1]}", daemon=True)
    thread.start()
    return thread


def base_url(server: Server, scheme: str = "http") -> str:
    host, port = server.server_address[:2]
    return f"{scheme}://{host!s}:{port}"
