"""Fault injection in front of an emulated Redfish service: 5xx answers, slow answers (client timeouts), connection
resets, answers that trickle in, oversized answers, redirects and rewritten bodies (links to another origin).

A WSGI middleware, so it works in front of the sushy-tools emulator, the iLO fake and the CDU simulator alike.
Each fault matches a method and a path pattern and fires a given number of times; tests add faults and read how
often they fired. ``Recorder`` is a service that only records what reached it (the "other origin" of tests that
check that credentials never leave their own).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["status", "delay", "reset", "trickle", "oversize", "redirect", "rewrite"]


@dataclass
class Fault:
    kind: Kind
    #: regular expression searched in the request path
    path: str = ""
    method: str | None = None
    #: HTTP status for kind "status"
    status: int = 500
    #: seconds to wait before answering, for kind "delay" (beyond the client's read timeout = a timeout); for
    #: "trickle", between chunks of the real answer
    seconds: float = 0.0
    #: bytes per chunk for "trickle"; the size of the answer for "oversize"
    size: int = 1
    #: "oversize": send a Content-Length (else the length shows only while reading)
    declare_length: bool = True
    #: "redirect": the Location to send (with status 307)
    location: str = ""
    #: "rewrite": (old, new) replaced in the real answer's body
    replace: tuple[str, str] = ("", "")
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
        #: the client ends (address, port) of the connections those requests came on
        self.peers: set[tuple[str, int]] = set()
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
        sock = environ.get("bitten.socket")
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError), self._lock:
                self.peers.add(sock.getpeername()[:2])
        fault = self._take(environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", ""))
        if fault is None:
            return self.app(environ, start_response)
        if fault.kind == "delay":
            time.sleep(fault.seconds)
            return self.app(environ, start_response)
        if fault.kind in ("trickle", "rewrite"):
            return self._altered(fault, environ, start_response)
        if fault.kind == "oversize":
            padding = "x" * max(0, fault.size - 16)
            data = json.dumps({"Padding": padding}).encode()
            headers = [("Content-Type", "application/json")]
            if fault.declare_length:
                headers.append(("Content-Length", str(len(data))))
            start_response("200 OK", headers)
            return (data[i:i + 65536] for i in range(0, len(data), 65536))
        if fault.kind == "redirect":
            start_response("307 Temporary Redirect", [("Location", fault.location), ("Content-Length", "0")])
            return [b""]
        if fault.kind == "reset":
            sock = environ.get("bitten.socket") or environ.get("werkzeug.socket")
            if isinstance(sock, socket.socket):
                # SO_LINGER 0: close() sends a TCP RST, which the client sees as "connection reset by peer"
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            raise ConnectionResetError("fault injection: connection reset")
        return self._status(fault, start_response)

    def _altered(self, fault: Fault, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """The real answer, rewritten ("rewrite") or sent ``size`` bytes at a time, ``seconds`` apart ("trickle")."""
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        data = b"".join(self.app(environ, capture))
        if fault.kind == "rewrite":
            data = data.replace(fault.replace[0].encode(), fault.replace[1].encode())
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        start_response(captured["status"], [*headers, ("Content-Length", str(len(data)))])
        if fault.kind == "rewrite":
            return [data]

        def slowly() -> Any:
            for i in range(0, len(data), max(1, fault.size)):
                yield data[i:i + max(1, fault.size)]
                time.sleep(fault.seconds)

        return slowly()

    @staticmethod
    def _status(fault: Fault, start_response: Callable[..., Any]) -> list[bytes]:
        body = json.dumps({"error": {"code": "Base.1.0.InternalError", "message": "fault injection",
                                     "@Message.ExtendedInfo": [{"MessageId": "Base.1.0.InternalError"}]}}).encode()
        from http import HTTPStatus

        start_response(f"{fault.status} {HTTPStatus(fault.status).phrase}",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


class Recorder:
    """A WSGI service that answers 404 to everything and records each request (method, path, headers)."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        headers = {k[5:].replace("_", "-").title(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
        with self._lock:
            self.seen.append(Seen(environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""), headers))
        start_response("404 Not Found", [("Content-Type", "application/json"), ("Content-Length", "2")])
        return [b"{}"]
