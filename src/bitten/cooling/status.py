"""The agent's read-only status: one immutable snapshot of what it knows, for its metrics exporter and for other
programs (the energy controller) through ``GET /status`` on the metrics port.

``/status`` (JSON, documented in docs/cooling-agent.md) is the interface other components read the cooling alarms
from; nothing outside the agent reads its internals or its databases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: version of the /status document; a reader refuses one it does not know
STATUS_VERSION = 1


@dataclass(frozen=True)
class DeviceStatus:
    name: str
    kind: str
    up: bool
    stale: bool
    last_ok: float | None
    failures: int
    errors_total: int
    garbage_total: int
    duration_s: float
    last_error: str


@dataclass(frozen=True)
class AlarmStatus:
    kind: str
    detail: str
    since: float
    severity: str


@dataclass(frozen=True)
class LoopStatus:
    name: str
    cdu: str
    nodes: tuple[str, ...]
    alarms: dict[str, AlarmStatus]
    #: alarm kinds whose inputs are unknown now, and why (they keep their previous state)
    unknown: dict[str, str]


@dataclass(frozen=True)
class StoreStatus:
    name: str
    available: bool
    errors_total: int
    last_error: str
    #: unavailable since (None while available)
    since: float | None


@dataclass(frozen=True)
class AgentStatus:
    site: str
    time: float
    started: float
    devices: tuple[DeviceStatus, ...]
    #: device kind (bitten.cooling.devices) -> device -> its latest view
    views: dict[str, dict[str, Any]]
    loops: tuple[LoopStatus, ...]
    #: (action, result) -> count
    actions: dict[tuple[str, str], int]
    events_total: int
    #: channel -> amount in the ledger since it began (kWh, m3), and this calendar year (UTC)
    ledger_totals: dict[str, float]
    year: int
    year_totals: dict[str, float]
    #: channel -> gaps in the ledger
    ledger_gaps: dict[str, int]
    stores: tuple[StoreStatus, ...]
    divergence_warn: float
    settings: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The ``/status`` document."""
        return {
            "version": STATUS_VERSION, "site": self.site, "time": self.time, "started": self.started,
            "loops": {loop.name: {
                "cdu": loop.cdu, "nodes": list(loop.nodes),
                "alarms": {a.kind: {"detail": a.detail, "since": a.since, "severity": a.severity}
                           for a in loop.alarms.values()},
                "unknown": dict(loop.unknown)} for loop in self.loops},
            "devices": {d.name: {"kind": d.kind, "up": d.up, "stale": d.stale, "last_ok": d.last_ok,
                                 "failures": d.failures, "last_error": d.last_error} for d in self.devices},
            "stores": {s.name: {"available": s.available, "since": s.since, "last_error": s.last_error}
                       for s in self.stores},
        }
