"""The agent's HTTP endpoint: ``/metrics`` (Prometheus, prometheus-client's WSGI app) and ``/status`` (its
read-only status as JSON, the interface other programs read the cooling alarms from; see docs/cooling-agent.md)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from bitten.cooling.metrics import AgentCollector
from bitten.cooling.status import AgentStatus

Start = Callable[[str, list[tuple[str, str]]], Any]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def app(status: Callable[[], AgentStatus]) -> Callable[[dict[str, Any], Start], Iterable[bytes]]:
    registry = CollectorRegistry()
    registry.register(AgentCollector(status))
    metrics = make_wsgi_app(registry)

    def route(environ: dict[str, Any], start: Start) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").rstrip("/") == "/status":
            if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
                start("405 Method Not Allowed", [("Allow", "GET, HEAD"), ("Content-Length", "0")])
                return [b""]
            body = json.dumps(status().to_json(), sort_keys=True).encode()
            start("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                             ("Cache-Control", "no-store")])
            return [body]
        return metrics(environ, start)  # type: ignore[no-any-return]

    return route


def serve(status: Callable[[], AgentStatus], addr: str, port: int) -> tuple[Any, threading.Thread]:
    """Serve /metrics and /status on addr:port (0: any free port) in a daemon thread; shut down with
    ``server.shutdown()``."""
    server = make_server(addr, port, app(status), ThreadingWSGIServer, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="metrics",
                              daemon=True)
    thread.start()
    return server, thread
