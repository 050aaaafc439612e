"""Fault injection in front of an emulated BMC: 5xx answers, slow answers (client timeouts), connection resets.

A WSGI middleware, so it works in front of the sushy-tools emulator and the iLO fake alike. Each fault matches a
method and a path pattern and fires a given number of times; tests add faults and read how often they fired.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["status", "delay", "reset"]


@dataclass
class Fault:
    kind: Kind
    #: regular expression searched in the request path
    path: str = ""
    method: str | None = None
    #: HTTP status for kind "status"
    status: int = 500
    #: seconds to wait before answering, for kind "delay" (beyond the client's read timeout = a timeout)
    seconds: float = 0.0
    #: how many matching requests it hits; None: every one
    times: int | None = 1
    fired: int = field(default=0, init=False)

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        if self.method is not None and self.method != method:
            return False
        return re.search(self.path, path) is not None


class FaultInjector:
    """Wraps a WSGI app; ``add()`` faults, ``clear()`` them."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.faults: list[Fault] = []
        #: every request that reached the injector, faulty or not
        self.requests = 0
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def _take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            self.requests += 1
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.fired += 1
                    return fault
        return None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        fault = self._take(environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", ""))
        if fault is None:
            return self.app(environ, start_response)
        if fault.kind == "delay":
            time.sleep(fault.seconds)
            return self.app(environ, start_response)
        if fault.kind == "reset":
            sock = environ.get("werkzeug.socket")
            if isinstance(sock, socket.socket):
                # SO_LINGER 0: close() sends a TCP RST, which the client sees as "connection reset by peer"
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            raise ConnectionResetError("fault injection: connection reset")
        body = json.dumps({"error": {"code": "Base.1.0.InternalError", "message": "fault injection",
                                     "@Message.ExtendedInfo": [{"MessageId": "Base.1.0.InternalError"}]}}).encode()
        from http import HTTPStatus

        start_response(f"{fault.status} {HTTPStatus(fault.status).phrase}",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
