"""Signals the controller decides on: one value per signal, with its status, its age and the reason it is not OK.

A signal is never guessed. Every read gives a :class:`Reading` whose ``value`` is None unless it is ``ok`` (or a
documented ``fallback`` such as the CO2 forecast standing in for a late realised value); anything else -- the
source is down, it answered garbage, its newest value is too old, a forecast that lies in the past -- carries the
reason, is counted by :class:`SignalHealth` (exported as metrics) and raises the signal's alarm. The policy engine
treats a signal that is not usable as "no change".
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["ok", "fallback", "stale", "missing", "garbage", "down", "forecast_in_past"]
#: statuses whose value a decision may use
USABLE: frozenset[str] = frozenset({"ok", "fallback"})
STATUSES: tuple[str, ...] = ("ok", "fallback", "stale", "missing", "garbage", "down", "forecast_in_past")


@dataclass(frozen=True)
class Reading:
    """One signal at one moment."""

    signal: str
    status: Status
    value: float | None = None
    #: start of the period the value is for (Unix seconds), None without a value
    at: float | None = None
    unit: str = ""
    #: where it came from: dataset or device/register, and "cache" when served from the cache
    source: str = ""
    reason: str = ""

    @property
    def usable(self) -> bool:
        return self.status in USABLE and self.value is not None

    def as_dict(self) -> dict[str, object]:
        return {"signal": self.signal, "status": self.status, "value": self.value, "at": self.at, "unit": self.unit,
                "source": self.source, "reason": self.reason}


@dataclass(frozen=True)
class Point:
    """One record of a time series: the period start (Unix seconds, UTC) and its value."""

    t: float
    value: float


@dataclass
class SourceHealth:
    requests_total: int = 0
    errors_total: int = 0
    garbage_total: int = 0
    last_success: float | None = None
    last_error: str = ""
    last_status: dict[str, str] = field(default_factory=dict)


class SignalHealth:
    """Counters and the latest status per signal and source, for metrics and alarms (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sources: dict[str, SourceHealth] = {}
        self.latest: dict[str, Reading] = {}
        self.not_ok_total: dict[tuple[str, str], int] = {}

    def source(self, name: str) -> SourceHealth:
        with self.lock:
            return self.sources.setdefault(name, SourceHealth())

    def request(self, source: str, *, ok: bool, error: str = "", garbage: int = 0, now: float) -> None:
        with self.lock:
            health = self.sources.setdefault(source, SourceHealth())
            health.requests_total += 1
            health.garbage_total += garbage
            if ok:
                health.last_success = now
            else:
                health.errors_total += 1
                health.last_error = error[:300]

    def record(self, readings: Iterable[Reading]) -> None:
        with self.lock:
            for reading in readings:
                self.latest[reading.signal] = reading
                if not reading.usable:
                    key = (reading.signal, reading.status)
                    self.not_ok_total[key] = self.not_ok_total.get(key, 0) + 1

    def alarms(self) -> dict[str, str]:
        """Signal -> reason for every signal whose latest reading is not usable."""
        with self.lock:
            return {name: f"{r.status}: {r.reason}" for name, r in self.latest.items() if not r.usable}
