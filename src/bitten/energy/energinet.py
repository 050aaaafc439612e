"""Energinet's Energi Data Service: DK1/DK2 CO2 intensity (realised and forecast) and day-ahead prices.

The API (public, no key): ``GET <url>/dataset/<Name>?start=..&end=..&filter={"PriceArea":["DK1"]}&sort=..&limit=N``
answers ``{"total": N, "dataset": "<Name>", "records": [...]}``. ``start``/``end`` are Danish local time
(``yyyy-MM-ddTHH:mm``, end exclusive); each record carries its period in UTC and in Danish time:

=============  ==============================  ==========  ===========================================
dataset        time field (UTC)                step        value field
=============  ==============================  ==========  ===========================================
CO2Emis        Minutes5UTC                     5 min       CO2Emission (g/kWh), realised
CO2EmisProg    Minutes5UTC                     5 min       CO2Emission (g/kWh), forecast
DayAheadPrices TimeUTC                         15 min      DayAheadPriceDKK / DayAheadPriceEUR (per MWh)
Elspotprices   HourUTC                         1 h         SpotPriceDKK / SpotPriceEUR (per MWh); ended when
                                                           the day-ahead market moved to quarter-hours (2025)
=============  ==============================  ==========  ===========================================

Every request has a timeout; a refresh retries transient faults (connection errors, timeouts, 429 and 5xx) with
jittered exponential backoff until its deadline, and never longer. Answers are checked record by record: a record
of another price area, without a parseable time or with a value that is not a finite number in the plausible range
is garbage (counted, skipped); an answer that is not the dataset's JSON shape is garbage as a whole. Good answers
are kept in a cache (memory and, when given a path, a JSON file written atomically), so a service that is down for
a while leaves the controller with what it knew: the day-ahead prices stay valid for their quarter-hours and the
forecast can stand in for a late realised value (status ``fallback``). Beyond that: "stale", "down", "garbage",
"forecast_in_past" -- no value, a reason, a metric, an alarm.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from bitten.core import retry
from bitten.energy.eds import DANISH_TIME, DATASETS, Dataset, danish_minutes, parse_utc
from bitten.energy.signals import Point, Reading, SignalHealth
from bitten.site.model import GridSignals

log = logging.getLogger("bitten.energy.energinet")

SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
__all__ = ["DANISH_TIME", "DATASETS", "Cache", "Dataset", "EnergiDataService", "SourceError", "Transient",
           "parse_records", "parse_utc", "top_hours_rank", "value_at"]


class SourceError(RuntimeError):
    """The service did not give a usable answer; ``status`` says how (down or garbage)."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


class Transient(SourceError):
    """Worth retrying: connection refused or reset, timeout, 429, 5xx."""


def _utc_minutes(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")


def parse_records(doc: Any, dataset: Dataset, price_area: str, currency: str) -> tuple[list[Point], int]:
    """Points of an answer, sorted and de-duplicated, and the number of garbage records skipped.

    Raises SourceError("garbage") when the answer is not the dataset's shape at all.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("records"), list):
        raise SourceError("garbage", f"{dataset.name}: the answer has no records list")
    if doc.get("dataset") not in (None, dataset.name):
        raise SourceError("garbage", f"{dataset.name}: the answer is for dataset {doc.get('dataset')!r}")
    field = dataset.value_field.format(currency=currency)
    points: dict[float, float] = {}
    garbage = 0
    for record in doc["records"]:
        if not isinstance(record, dict) or record.get("PriceArea") != price_area:
            garbage += 1
            continue
        t = parse_utc(record.get(dataset.time_field))
        value = record.get(field)
        if t is None or isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                or not dataset.low <= value <= dataset.high or t % dataset.step_s:
            garbage += 1
            continue
        points[t] = float(value)
    return [Point(t, v) for t, v in sorted(points.items())], garbage


class Cache:
    """The last good points per dataset, with when they were fetched; optionally persisted as JSON."""

    def __init__(self, path: Path | None = None, keep_s: float = 3 * 86400) -> None:
        self.path = path
        self.keep_s = keep_s
        self.points: dict[str, dict[float, float]] = {}
        self.fetched: dict[str, float] = {}
        if path is not None and path.exists():
            try:
                raw = json.loads(path.read_text())
                for name, entry in raw.items():
                    self.points[name] = {float(t): float(v) for t, v in entry["points"]}
                    self.fetched[name] = float(entry["fetched"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("signal cache %s unreadable, starting empty: %s", path, exc)
                self.points, self.fetched = {}, {}

    def merge(self, name: str, points: list[Point], now: float) -> None:
        series = self.points.setdefault(name, {})
        for p in points:
            series[p.t] = p.value
        for t in [t for t in series if t < now - self.keep_s]:
            del series[t]
        self.fetched[name] = now
        self._save()

    def series(self, name: str) -> list[Point]:
        return [Point(t, v) for t, v in sorted(self.points.get(name, {}).items())]

    def _save(self) -> None:
        if self.path is None:
            return
        data = {name: {"fetched": self.fetched.get(name, 0.0), "points": sorted(series.items())}
                for name, series in self.points.items()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.path)


def value_at(points: list[Point], t: float, step_s: float) -> Point | None:
    """The point whose period [t0, t0 + step) contains t."""
    lo, hi = 0, len(points)
    while lo < hi:
        mid = (lo + hi) // 2
        if points[mid].t <= t:
            lo = mid + 1
        else:
            hi = mid
    if lo == 0:
        return None
    p = points[lo - 1]
    return p if t < p.t + step_s else None


class EnergiDataService:
    """The grid signals of one price area, refreshed every ``refresh_s`` and read at any moment."""

    def __init__(self, cfg: GridSignals, *, cache: Cache | None = None, health: SignalHealth | None = None,
                 session: requests.Session | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        for name in (cfg.co2_dataset, cfg.co2_forecast_dataset, cfg.price_dataset):
            if name not in DATASETS:
                raise ValueError(f"unknown Energi Data Service dataset {name!r}; known: {', '.join(DATASETS)}")
        self.cfg = cfg
        self.cache = cache or Cache()
        self.health = health or SignalHealth()
        self.session = session or requests.Session()
        self.session.headers.update({"Accept": "application/json"})
        self.verify: str | bool = cfg.ca_file or (SYSTEM_CA_BUNDLE if os.path.exists(SYSTEM_CA_BUNDLE) else True)
        self.clock = clock
        self.sleep = sleep
        self.last_refresh: float | None = None
        #: dataset -> status and reason of its last fetch ("ok" or the failure)
        self.fetch_status: dict[str, tuple[str, str]] = {}

    # --- fetching -------------------------------------------------------------------------------------------
    def _get(self, dataset: Dataset, start: float, end: float) -> Any:
        params = {
            "start": danish_minutes(start), "end": danish_minutes(end),
            "filter": json.dumps({"PriceArea": [self.cfg.price_area]}, separators=(",", ":")),
            "sort": f"{dataset.time_field} ASC",
            "limit": str(int((end - start) // dataset.step_s) + 10),
        }
        url = f"{self.cfg.url.rstrip('/')}/dataset/{dataset.name}"
        try:
            resp = self.session.get(url, params=params, timeout=self.cfg.timeout_s, verify=self.verify,
                                    allow_redirects=False)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise Transient("down", f"{dataset.name}: {exc.__class__.__name__}: {exc}") from exc
        except requests.RequestException as exc:
            raise SourceError("down", f"{dataset.name}: {exc}") from exc
        if resp.status_code == 429 or resp.status_code >= 500:
            raise Transient("down", f"{dataset.name}: HTTP {resp.status_code}")
        if resp.status_code != 200:
            raise SourceError("down", f"{dataset.name}: HTTP {resp.status_code}")
        try:
            return resp.json()
        except ValueError as exc:
            raise SourceError("garbage", f"{dataset.name}: the answer is not JSON ({exc})") from exc

    def fetch(self, name: str, start: float, end: float) -> list[Point]:
        """Points of one dataset over [start, end), retried with backoff until the deadline."""
        dataset = DATASETS[name]
        source = f"energinet:{name}"
        # no retry starts unless it can end (one timeout) within the deadline
        policy = retry.Backoff(attempts=100, initial=0.5, maximum=max(1.0, self.cfg.deadline_s / 4),
                               deadline=self.cfg.deadline_s - self.cfg.timeout_s)
        try:
            doc = retry.call(lambda: self._get(dataset, start, end), policy,
                             lambda exc: isinstance(exc, Transient), sleep=self.sleep)
            points, garbage = parse_records(doc, dataset, self.cfg.price_area, self.cfg.currency)
        except SourceError as exc:
            self.health.request(source, ok=False, error=str(exc), garbage=1 if exc.status == "garbage" else 0,
                                now=self.clock())
            raise
        if garbage and not points:
            error = SourceError("garbage", f"{name}: none of {garbage} record(s) is usable")
            self.health.request(source, ok=False, error=str(error), garbage=garbage, now=self.clock())
            raise error
        self.health.request(source, ok=True, garbage=garbage, now=self.clock())
        if garbage:
            log.warning("%s: skipped %d garbage record(s)", name, garbage)
        return points

    def refresh(self, force: bool = False) -> None:
        """Fetch what is due: the last hours of realised CO2, the forecast ahead, and the prices of two days."""
        now = self.clock()
        if not force and self.last_refresh is not None and now - self.last_refresh < self.cfg.refresh_s:
            return
        self.last_refresh = now
        day = datetime.fromtimestamp(now, DANISH_TIME).replace(hour=0, minute=0, second=0, microsecond=0)
        windows = {
            self.cfg.co2_dataset: (now - 3 * 3600, now + 300),
            self.cfg.co2_forecast_dataset: (now - 3600, now + 36 * 3600),
            self.cfg.price_dataset: (day.timestamp(), (day + timedelta(days=2)).timestamp()),
        }
        for name, (start, end) in windows.items():
            try:
                points = self.fetch(name, start, end)
            except SourceError as exc:
                self.fetch_status[name] = (exc.status, str(exc))
                log.warning("%s", exc)
                continue
            self.cache.merge(name, points, now)
            self.fetch_status[name] = ("ok", "")

    # --- reading --------------------------------------------------------------------------------------------
    def _failure(self, name: str) -> tuple[str, str]:
        return self.fetch_status.get(name, ("missing", "never fetched"))

    def realised_co2(self, now: float) -> Reading:
        name = self.cfg.co2_dataset
        points = self.cache.series(name)
        status, why = self._failure(name)
        if not points:
            return Reading("co2", "down" if status == "down" else "garbage" if status == "garbage" else "missing",
                           unit="g/kWh", source=f"energinet:{name}", reason=why or "no realised values")
        last = points[-1]
        age = now - (last.t + DATASETS[name].step_s)
        if last.t > now:
            return Reading("co2", "garbage", unit="g/kWh", source=f"energinet:{name}",
                           reason=f"realised value dated {_utc_minutes(last.t)} UTC, in the future")
        if age > self.cfg.max_age_s:
            reason = f"newest realised value is {age:.0f} s old (max_age_s {self.cfg.max_age_s:g})"
            if status != "ok":
                reason += f"; last fetch: {why}"
            return Reading("co2", "stale", at=last.t, unit="g/kWh", source=f"energinet:{name}", reason=reason)
        return Reading("co2", "ok", last.value, last.t, "g/kWh", f"energinet:{name}")

    def forecast_co2(self, now: float) -> Reading:
        name = self.cfg.co2_forecast_dataset
        points = self.cache.series(name)
        status, why = self._failure(name)
        source = f"energinet:{name}"
        if not points:
            return Reading("co2_forecast", "down" if status == "down" else "missing", unit="g/kWh", source=source,
                           reason=why or "no forecast")
        if points[-1].t + DATASETS[name].step_s <= now:
            return Reading("co2_forecast", "forecast_in_past", unit="g/kWh", source=source,
                           reason=f"the newest forecast is for {_utc_minutes(points[-1].t)} UTC, before now")
        point = value_at(points, now, DATASETS[name].step_s)
        if point is None:
            return Reading("co2_forecast", "missing", unit="g/kWh", source=source,
                           reason="the forecast does not cover now")
        return Reading("co2_forecast", "ok", point.value, point.t, "g/kWh", source)

    def price(self, now: float) -> Reading:
        name = self.cfg.price_dataset
        dataset = DATASETS[name]
        unit = f"{self.cfg.currency}/MWh"
        point = value_at(self.cache.series(name), now, dataset.step_s)
        if point is None:
            status, why = self._failure(name)
            return Reading("price", "down" if status == "down" else "garbage" if status == "garbage" else "missing",
                           unit=unit, source=f"energinet:{name}", reason=why or "no price for now")
        fetched = self.fetch_status.get(name, ("ok", ""))[0]
        # a day-ahead price is final for its period once published: a cached one is as good as a fresh one
        return Reading("price", "ok", point.value, point.t, unit,
                       f"energinet:{name}" + ("" if fetched == "ok" else " (cache)"))

    def price_day(self, now: float) -> tuple[list[Point], bool]:
        """The Danish day's prices and whether the day is complete (every period of the day has a price)."""
        dataset = DATASETS[self.cfg.price_dataset]
        day = datetime.fromtimestamp(now, DANISH_TIME).replace(hour=0, minute=0, second=0, microsecond=0)
        start, end = day.timestamp(), (day + timedelta(days=1)).timestamp()  # 23, 24 or 25 h (DST)
        points = [p for p in self.cache.series(self.cfg.price_dataset) if start <= p.t < end]
        return points, len(points) == round((end - start) / dataset.step_s)

    def readings(self, now: float | None = None) -> dict[str, Reading]:
        """co2 (realised, or the forecast as a labelled fallback), co2_forecast and price at ``now``."""
        now = self.clock() if now is None else now
        realised = self.realised_co2(now)
        forecast = self.forecast_co2(now)
        co2 = realised
        if not realised.usable and forecast.usable:
            co2 = Reading("co2", "fallback", forecast.value, forecast.at, "g/kWh", forecast.source,
                          reason=f"forecast stands in: realised is {realised.status} ({realised.reason})")
        out = {"co2": co2, "co2_forecast": forecast, "price": self.price(now)}
        self.health.record(out.values())
        return out


def top_hours_rank(points: list[Point], complete: bool, now: float, step_s: float) -> tuple[int | None, str]:
    """Rank (1 = most expensive) of the period containing ``now`` among the day's periods, with a reason if None."""
    if not complete:
        return None, f"the day's prices are incomplete ({len(points)} periods)"
    current = value_at(points, now, step_s)
    if current is None:
        return None, "no price for now"
    return 1 + sum(1 for p in points if p.value > current.value), ""
