"""The energy ledger: durable counters of IT energy, facility energy, reused heat, renewable energy and water.

SQLite in WAL mode with synchronous=FULL: a sample is on disk when ``record`` returns, so a killed agent or a
power cut loses at most the sample being written, and the database stays consistent. Each source of a channel
keeps its last sample; the next one adds an interval (a counter's difference, or a power reading integrated by
the trapezoid rule, or a level integrated over time). A silence longer than ``max_gap_s`` -- the agent was down,
the meter offline -- is recorded as a gap, never filled in. A counter keeps counting through a gap, so its
difference across the gap is kept beside the gap as "bridged" (measured, but not attributable in time); a counter
that went backwards (reset, replaced meter) is a gap with nothing bridged, and so is a counter that stepped further
than its meter can measure in the time (``max_rate``: a glitch to 0xFFFFFFFF is never energy).

Garbage never breaks a batch: a sample that is not a finite number is refused before it touches the database
(ValueError), each sample is its own savepoint (a sample that fails rolls back alone, not the batch), and a source
whose stored last value is unusable (NULL, from a database written before values were checked) starts afresh.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Kind = Literal["counter", "power", "level"]
#: unit of a channel's amount: energy channels in kWh, water in m3, levels as value * seconds
CHANNEL_UNITS = {"it_energy": "kWh", "facility_energy": "kWh", "reused_heat": "kWh", "renewable_energy": "kWh",
                 "water_input": "m3", "potable_water_input": "m3", "waste_heat_temperature": "degC",
                 # per node (source = node name), from its BMC: electric energy, and heat its coolant removed
                 "node_energy": "kWh", "node_heat": "kWh"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS last(channel TEXT, source TEXT, kind TEXT, ts REAL, value REAL,
                                PRIMARY KEY(channel, source));
CREATE TABLE IF NOT EXISTS intervals(channel TEXT, source TEXT, start REAL, end REAL, amount REAL, method TEXT);
CREATE INDEX IF NOT EXISTS intervals_by_time ON intervals(channel, start);
CREATE TABLE IF NOT EXISTS gaps(channel TEXT, source TEXT, start REAL, end REAL, reason TEXT, bridged REAL);
CREATE TABLE IF NOT EXISTS provenance(channel TEXT, source TEXT, description TEXT, since REAL,
                                      PRIMARY KEY(channel, source));
CREATE INDEX IF NOT EXISTS gaps_by_time ON gaps(channel, start);
"""

METHODS: dict[str, str] = {"counter": "difference of the meter's counter",
                           "power": "power readings integrated over time (trapezoid rule)",
                           "level": "time-weighted mean of the readings"}


@dataclass(frozen=True)
class Gap:
    channel: str
    source: str
    start: float
    end: float
    reason: str
    bridged: float | None


@dataclass
class Total:
    """A channel's amount over a period, with what it is made of."""

    channel: str
    start: float
    end: float
    #: kWh / m3; for a level channel the time-weighted mean (None without any interval)
    value: float | None = None
    unit: str = ""
    sources: dict[str, str] = field(default_factory=dict)  # source -> method
    covered_s: float = 0.0
    gaps: list[Gap] = field(default_factory=list)
    #: counter differences across gaps that lie wholly inside the period (included in value)
    bridged: float = 0.0

    @property
    def coverage(self) -> float:
        """Fraction of the period (times sources) that intervals cover."""
        span = (self.end - self.start) * max(1, len(self.sources))
        return self.covered_s / span if span > 0 else 0.0


class Ledger:
    def __init__(self, path: Path, max_gap_s: float = 300.0, busy_timeout_s: float = 5.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_gap_s = max_gap_s
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=busy_timeout_s)
        self.lock = threading.RLock()
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self._depth = 0

    @classmethod
    def reader(cls, path: Path, max_gap_s: float = 300.0, busy_timeout_s: float = 5.0) -> Ledger:
        """A read-only view of a ledger another account writes (the energy controller's statements read the cooling
        agent's, through the agent's group): no schema or pragma is written. SQLite opens a WAL database read-only
        while its -wal and -shm files exist (the writer keeps them); a missing or unreadable file raises
        sqlite3.Error (OperationalError), and nothing is created."""
        self = cls.__new__(cls)
        self.path = path
        self.max_gap_s = max_gap_s
        self.db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, check_same_thread=False,
                                  isolation_level=None, timeout=busy_timeout_s)
        self.db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # fails here, not at the first query
        self.lock = threading.RLock()
        self._depth = 0
        return self

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Record several samples in one transaction (one fsync)."""
        with self.lock:
            self._depth += 1
            if self._depth == 1:
                self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if self._depth == 1:
                    self.db.execute("ROLLBACK")
                raise
            finally:
                self._depth -= 1
            if self._depth == 0:
                self.db.execute("COMMIT")

    def record(self, channel: str, source: str, kind: Kind, ts: float, value: float,
               max_rate: float | None = None) -> float | None:
        """Add one sample of a source; durable when this returns (or when the enclosing batch commits).

        ``max_rate`` (counters): the most the counter can grow per second (the meter's maximum power or flow); a
        larger step is a gap. Returns the amount the sample added to the channel (None when it added an interval of
        nothing: the first sample of a source, a gap, or an ignored sample). A value or time that is not a finite
        number raises ValueError and changes nothing.
        """
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{channel}/{source}: sample {value!r} is not a finite number: not recorded")
        if not math.isfinite(ts):
            raise ValueError(f"{channel}/{source}: timestamp {ts!r} is not a finite number: not recorded")
        with self.batch():
            self.db.execute("SAVEPOINT sample")
            try:
                added = self._record(channel, source, kind, ts, float(value), max_rate)
            except BaseException:
                self.db.execute("ROLLBACK TO sample")
                self.db.execute("RELEASE sample")
                raise
            self.db.execute("RELEASE sample")
            return added

    def _record(self, channel: str, source: str, kind: Kind, ts: float, value: float,
                max_rate: float | None) -> float | None:
        row = self.db.execute("SELECT kind, ts, value FROM last WHERE channel = ? AND source = ?",
                              (channel, source)).fetchone()
        added = None
        if row is not None and isinstance(row[1], int | float) and isinstance(row[2], int | float):
            last_kind, last_ts, last_value = row
            if ts <= last_ts:
                return None  # not newer (clock went back, or a duplicate): ignore, keep the later sample
            if last_kind == kind:
                added = self._add(channel, source, kind, last_ts, last_value, ts, value, max_rate)
        self.db.execute("INSERT OR REPLACE INTO last VALUES (?, ?, ?, ?, ?)", (channel, source, kind, ts, value))
        return added

    def _add(self, channel: str, source: str, kind: Kind, t0: float, v0: float, t1: float, v1: float,
             max_rate: float | None = None) -> float | None:
        dt = t1 - t0
        if kind == "counter" and v1 < v0:
            self.db.execute("INSERT INTO gaps VALUES (?, ?, ?, ?, ?, NULL)",
                            (channel, source, t0, t1, f"counter went backwards ({v0:g} -> {v1:g}): reset or "
                             "replaced meter"))
            return None
        if kind == "counter" and max_rate is not None and v1 - v0 > max_rate * dt:
            self.db.execute("INSERT INTO gaps VALUES (?, ?, ?, ?, ?, NULL)",
                            (channel, source, t0, t1, f"counter stepped {v1 - v0:g} in {dt:.0f} s, more than the "
                             f"meter can measure ({max_rate * dt:g}): a glitch, not energy"))
            return None
        if dt > self.max_gap_s:
            bridged = v1 - v0 if kind == "counter" else None
            self.db.execute("INSERT INTO gaps VALUES (?, ?, ?, ?, ?, ?)",
                            (channel, source, t0, t1, f"no reading for {dt:.0f} s", bridged))
            return None
        if kind == "counter":
            amount = v1 - v0
        elif kind == "power":
            amount = (v0 + v1) / 2 * dt / 3600.0  # kW * h
        else:
            amount = (v0 + v1) / 2 * dt  # value * s
        self.db.execute("INSERT INTO intervals VALUES (?, ?, ?, ?, ?, ?)", (channel, source, t0, t1, amount, kind))
        return amount

    def describe(self, channel: str, source: str, description: str, ts: float) -> None:
        """Where a source's readings come from (device, resource, property); kept when it changes."""
        with self.batch():
            row = self.db.execute("SELECT description FROM provenance WHERE channel = ? AND source = ?",
                                  (channel, source)).fetchone()
            if row is None or row[0] != description:
                self.db.execute("INSERT OR REPLACE INTO provenance VALUES (?, ?, ?, ?)",
                                (channel, source, description, ts))

    def provenance(self, channel: str) -> dict[str, str]:
        with self.lock:
            return dict(self.db.execute("SELECT source, description FROM provenance WHERE channel = ?",
                                        (channel,)).fetchall())

    # --- queries ----------------------------------------------------------------------------------------------
    def total(self, channel: str, start: float, end: float, source: str | None = None) -> Total:
        """A channel's amount over [start, end): of every source, or of one (``source``)."""
        out = Total(channel, start, end, unit=CHANNEL_UNITS.get(channel, ""))
        amount = 0.0
        level_s = 0.0
        with self.lock:
            rows = self.db.execute(
                "SELECT source, start, end, amount, method FROM intervals WHERE channel = ? AND end > ? AND start < ? "
                "AND (? IS NULL OR source = ?)", (channel, start, end, source, source)).fetchall()
            gap_rows = self.db.execute(
                "SELECT source, start, end, reason, bridged FROM gaps WHERE channel = ? AND end > ? AND start < ? "
                "AND (? IS NULL OR source = ?) ORDER BY start", (channel, start, end, source, source)).fetchall()
            for (name,) in self.db.execute("SELECT DISTINCT source FROM last WHERE channel = ? AND (? IS NULL OR "
                                           "source = ?)", (channel, source, source)):
                out.sources.setdefault(name, "")
        kind = None
        for source, s, e, a, method in rows:
            overlap = min(e, end) - max(s, start)
            share = overlap / (e - s) if e > s else 0.0
            amount += a * share
            out.covered_s += overlap
            out.sources[source] = METHODS.get(method, method)
            kind = method
            if method == "level":
                level_s += overlap
        for source, s, e, reason, bridged in gap_rows:
            out.gaps.append(Gap(channel, source, s, e, reason, bridged))
            if bridged is not None and s >= start and e <= end:
                out.bridged += bridged
        if kind == "level":
            out.value = amount / level_s if level_s > 0 else None
        elif rows or out.bridged:
            out.value = amount + out.bridged
        return out

    def series(self, channel: str, start: float, end: float, bins: int) -> list[tuple[float, float | None]]:
        """Mean rate per bin (kW for energy channels; None where no interval covers the bin)."""
        width = (end - start) / bins
        energy = [0.0] * bins
        covered = [0.0] * bins
        with self.lock:
            rows = self.db.execute("SELECT start, end, amount FROM intervals WHERE channel = ? AND end > ? AND "
                                   "start < ?", (channel, start, end)).fetchall()
        for s, e, a in rows:
            if e <= s:
                continue
            first, last = int(max(0, (s - start) // width)), int(min(bins - 1, (e - start) // width))
            for b in range(first, last + 1):
                b0, b1 = start + b * width, start + (b + 1) * width
                overlap = min(e, b1) - max(s, b0)
                if overlap > 0:
                    energy[b] += a * overlap / (e - s)
                    covered[b] += overlap
        return [(start + (b + 0.5) * width, energy[b] / (covered[b] / 3600.0) if covered[b] > 0 else None)
                for b in range(bins)]

    def sums(self, start: float | None = None) -> dict[str, float]:
        """Per channel, the amount of every interval that ended after ``start`` (all of them without), plus counter
        differences bridged across gaps: what the agent's counters start from (summed in SQLite, not in Python)."""
        with self.lock:
            rows = self.db.execute("SELECT channel, SUM(amount) FROM intervals WHERE (? IS NULL OR end > ?) AND "
                                   "method != 'level' GROUP BY channel", (start, start)).fetchall()
            bridged = self.db.execute("SELECT channel, SUM(bridged) FROM gaps WHERE bridged IS NOT NULL AND "
                                      "(? IS NULL OR end > ?) GROUP BY channel", (start, start)).fetchall()
        out: dict[str, float] = {}
        for channel, amount in [*rows, *bridged]:
            if amount is not None:
                out[channel] = out.get(channel, 0.0) + float(amount)
        return out

    def gap_counts(self) -> dict[str, int]:
        with self.lock:
            return {channel: int(n) for channel, n in
                    self.db.execute("SELECT channel, COUNT(*) FROM gaps GROUP BY channel").fetchall()}

    def span(self) -> tuple[float, float] | None:
        """Start of the first and end of the last interval in the ledger (None when it is empty)."""
        with self.lock:
            row = self.db.execute("SELECT MIN(start), MAX(end) FROM intervals").fetchone()
        return (row[0], row[1]) if row and row[0] is not None else None
