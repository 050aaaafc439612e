"""Serve a DMTF Redfish mockup directory read-only (GET only; every write is refused with 405).

A mockup is a tree of ``index.json`` files, one per resource (DMTF Redfish-Publications). Test peer for inventory
parsing: real vendor-neutral shapes, static data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


class MockupApp:
    """WSGI app answering ``GET /redfish/v1/<path>`` with ``<root>/<path>/index.json``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        if not (self.root / "index.json").is_file():
            raise FileNotFoundError(f"{root}: not a Redfish mockup (no index.json)")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/").rstrip("/")
        if method not in ("GET", "HEAD"):
            return _send(start_response, 405, {"error": {"code": "Base.1.0.OperationNotAllowed",
                                                          "message": "this mockup is read-only"}})
        prefix = "/redfish/v1"
        if path != prefix and not path.startswith(prefix + "/"):
            return _send(start_response, 404, {"error": {"code": "Base.1.0.ResourceMissingAtURI"}})
        target = (self.root / path[len(prefix):].lstrip("/") / "index.json").resolve()
        if not target.is_relative_to(self.root) or not target.is_file():
            return _send(start_response, 404, {"error": {"code": "Base.1.0.ResourceMissingAtURI"}})
        return _send(start_response, 200, json.loads(target.read_text()))


def _send(start_response: Callable[..., Any], status: int, body: Any) -> list[bytes]:
    from http import HTTPStatus

    data = json.dumps(body).encode()
    start_response(f"{status} {HTTPStatus(status).phrase}", [("Content-Type", "application/json"),
                                                              ("Content-Length", str(len(data)))])
    return [data]
