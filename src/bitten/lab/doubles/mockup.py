"""Serve a DMTF Redfish mockup directory read-only (GET and HEAD; anything else answers 405).

A mockup is static: ``/redfish/v1/X`` is ``DIR/X/index.json``. Query strings are ignored, as a service without
$expand support would. Used by the tests and the Molecule scenario to stand the DMTF CDU mockup up as a device.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bitten.lab.httpserve import Server, serve


def mockup_handler(root: Path) -> type[BaseHTTPRequestHandler]:
    root = root.resolve()

    class Handler(BaseHTTPRequestHandler):
        server_version = "bitten-mockup/1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _document(self) -> bytes | None:
            path = unquote(urlsplit(self.path).path).rstrip("/")
            if path in ("/redfish", ""):
                return json.dumps({"v1": "/redfish/v1/"}).encode()
            if not path.startswith("/redfish/v1"):
                return None
            rel = path[len("/redfish/v1"):].lstrip("/")
            target = (root / rel / "index.json").resolve()
            if root not in target.parents and target != root / "index.json":
                return None
            return target.read_bytes() if target.is_file() else None

        def do_GET(self) -> None:
            body = self._document()
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("OData-Version", "4.0")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_HEAD = do_GET

        def _read_only(self) -> None:
            self.send_response(405)
            self.send_header("Allow", "GET, HEAD")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_PATCH = do_PUT = do_DELETE = _read_only

    return Handler


def serve_mockup(root: Path, host: str = "127.0.0.1", port: int = 0, *, certfile: str | None = None,
                 keyfile: str | None = None) -> Server:
    if not (root / "index.json").is_file():
        raise FileNotFoundError(f"{root} is not a Redfish mockup (no index.json)")
    return serve(mockup_handler(root), host, port, certfile=certfile, keyfile=keyfile)
