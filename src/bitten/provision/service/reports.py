"""The provisioner's boot record: what each node reported, its DHCP leases, and the MACs that got none.

Three sources, all on the provisioner:

- the nodes' reports (``bitten-report`` in every image POSTs ``/report`` through nginx, which adds the sender's
  address): accepted only from a node of ``nodes.json`` at the address of its reservation, kept per node and state
  (``up``, ``deployed``, ``failed``), each with the time it arrived;
- dnsmasq's lease events (its ``dhcp-script`` runs ``bitten-provision dhcp-event``): one JSON line per lease
  handed out, with the time, so each boot's lease is on record;
- dnsmasq's log: a request from a MAC without a reservation is logged as ``ignored`` (no lease); those MACs and
  when they asked make the "unknown MACs" of the report.

``GET /status`` returns all of it as one JSON document for the boot stage (bitten.provision.boot).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

STATES = ("up", "deployed", "failed")
MAX_BODY = 16 * 1024
#: lease events kept per node in the status (most recent last)
LEASES_SHOWN = 5
#: how much of dnsmasq's log is read for unknown MACs (the tail: recent requests)
LOG_TAIL_BYTES = 2 * 1024 * 1024

#: "Dec  1 22:06:14 dnsmasq-dhcp[388]: 359732936 DHCPDISCOVER(eth0) 52:54:00:79:00:41 ignored"
IGNORED = re.compile(r"^(?P<when>\w{3} +\d+ \d\d:\d\d:\d\d) dnsmasq-dhcp\[\d+\]: (?:\d+ )?"
                     r"DHCP(?:DISCOVER|REQUEST)\((?P<iface>[^)]+)\) (?:[\d.]+ )?(?P<mac>[0-9a-f:]{17}) ignored$")


@dataclass
class Store:
    """The provisioner's state directory: reports/<node>.json and dhcp-events.jsonl."""

    state_dir: Path
    nodes_file: Path
    dnsmasq_log: Path
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def nodes(self) -> dict[str, dict[str, Any]]:
        data = json.loads(self.nodes_file.read_text())
        nodes: dict[str, dict[str, Any]] = data["nodes"]
        return nodes

    @property
    def reports_dir(self) -> Path:
        return self.state_dir / "reports"

    @property
    def events_file(self) -> Path:
        return self.state_dir / "dhcp-events.jsonl"

    # --- reports ------------------------------------------------------------------------------------------
    def accept(self, report: Any, sender: str, now: float | None = None) -> tuple[int, str]:
        """Check and keep one report; returns (HTTP status, message)."""
        if not isinstance(report, dict):
            return HTTPStatus.BAD_REQUEST, "a report is a JSON object"
        name, state = report.get("node"), report.get("state")
        nodes = self.nodes()
        if not isinstance(name, str) or name not in nodes:
            return HTTPStatus.FORBIDDEN, f"unknown node {name!r}"
        if nodes[name]["ip"] != sender:
            return HTTPStatus.FORBIDDEN, f"{name} reports from {nodes[name]['ip']}, not from {sender}"
        if state not in STATES:
            return HTTPStatus.BAD_REQUEST, f"state must be one of {', '.join(STATES)}"
        keep = {k: report.get(k) for k in ("image_id", "root", "deploy", "boot_id", "uptime_s", "kernel", "message")}
        keep.update(state=state, received_at=round(now if now is not None else time.time(), 3), sender=sender)
        with self._lock:
            self.reports_dir.mkdir(parents=True, exist_ok=True)
            path = self.reports_dir / f"{name}.json"
            current = json.loads(path.read_text()) if path.exists() else {}
            current[state] = keep
            current["last"] = keep
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
            os.replace(tmp, path)
        return HTTPStatus.OK, f"{name}: {state} recorded"

    def reports(self, name: str) -> dict[str, Any]:
        path = self.reports_dir / f"{name}.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return data

    # --- DHCP ---------------------------------------------------------------------------------------------
    def dhcp_event(self, action: str, mac: str, ip: str, hostname: str | None, interface: str | None,
                   now: float | None = None) -> bool:
        """Record a lease dnsmasq handed out (``add``/``old`` with a request on an interface); else ignore it."""
        if action not in ("add", "old") or not interface:
            return False  # "del", and the "old" events dnsmasq replays for its lease file when it starts
        event = {"event": action, "mac": mac.lower(), "ip": ip, "hostname": hostname, "interface": interface,
                 "at": round(now if now is not None else time.time(), 3)}
        with self._lock:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            with self.events_file.open("a") as f:
                f.write(json.dumps(event, sort_keys=True) + "\n")
        return True

    def leases(self) -> dict[str, list[dict[str, Any]]]:
        """Lease events by MAC, oldest first."""
        out: dict[str, list[dict[str, Any]]] = {}
        try:
            lines = self.events_file.read_text().splitlines()
        except FileNotFoundError:
            return out
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            out.setdefault(str(event.get("mac")), []).append(event)
        return out

    def unknown_macs(self, known: Iterable[str], now: float | None = None) -> dict[str, dict[str, Any]]:
        """MACs without a reservation that asked for a lease (dnsmasq logs them as ignored)."""
        known_set = {m.lower() for m in known}
        out: dict[str, dict[str, Any]] = {}
        for when, mac, interface in _ignored(self.dnsmasq_log, now):
            if mac in known_set:
                continue
            seen = out.setdefault(mac, {"first_seen": when, "last_seen": when, "requests": 0,
                                        "interface": interface})
            seen["last_seen"] = when
            seen["requests"] += 1
        return out

    # --- status -------------------------------------------------------------------------------------------
    def status(self, now: float | None = None) -> dict[str, Any]:
        nodes = self.nodes()
        leases = self.leases()
        out: dict[str, Any] = {}
        for name, reservation in sorted(nodes.items()):
            mac = str(reservation["mac"]).lower()
            out[name] = {"reservation": reservation, "leases": leases.get(mac, [])[-LEASES_SHOWN:],
                         "reports": self.reports(name)}
        return {"time": round(now if now is not None else time.time(), 3), "nodes": out,
                "unknown_macs": self.unknown_macs((str(r["mac"]) for r in nodes.values()), now)}


def _ignored(log: Path, now: float | None) -> Iterable[tuple[float, str, str]]:
    try:
        with log.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - LOG_TAIL_BYTES))
            text = f.read().decode(errors="replace")
    except FileNotFoundError:
        return
    current = time.localtime(now if now is not None else time.time())
    for line in text.splitlines():
        match = IGNORED.match(line.strip())
        if match is None:
            continue
        yield _syslog_time(match["when"], current), match["mac"], match["iface"]


def _syslog_time(stamp: str, now: time.struct_time) -> float:
    """dnsmasq's syslog-style local time (no year): this year, or last year when that would be in the future."""
    parsed = time.strptime(f"{now.tm_year} {' '.join(stamp.split())}", "%Y %b %d %H:%M:%S")
    when = time.mktime(parsed)
    if when > time.mktime(now) + 86400:
        when = time.mktime(time.strptime(f"{now.tm_year - 1} {' '.join(stamp.split())}", "%Y %b %d %H:%M:%S"))
    return when


class Handler(BaseHTTPRequestHandler):
    """POST /report (from nodes, through nginx) and GET /status (for the boot stage)."""

    store: Store
    server_version = "bitten-provision"

    def _reply(self, status: int, body: Any) -> None:
        data = (json.dumps(body, indent=1, sort_keys=True) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/status":
            self._reply(HTTPStatus.NOT_FOUND, {"error": "not found"})
            return
        self._reply(HTTPStatus.OK, self.store.status())

    def do_POST(self) -> None:
        if self.path != "/report":
            self._reply(HTTPStatus.NOT_FOUND, {"error": "not found"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_BODY:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": f"a report has 1 to {MAX_BODY} bytes"})
            return
        # the service listens on loopback behind nginx, which sets X-Real-IP to the node's address
        sender = self.headers.get("X-Real-IP") or self.client_address[0]
        try:
            report = json.loads(self.rfile.read(length))
        except ValueError:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": "not JSON"})
            return
        status, message = self.store.accept(report, sender)
        self._reply(status, {"result": message} if status == HTTPStatus.OK else {"error": message})

    def log_message(self, format: str, *args: Any) -> None:
        print(f"{self.address_string()} {format % args}", flush=True)


def serve(store: Store, host: str, port: int) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"store": store})
    return ThreadingHTTPServer((host, port), handler)
