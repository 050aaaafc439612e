"""The cooling agent: poll CDUs and meters, compute heat, raise alarms and act on them, keep the ledger.

One loop: every ``poll_interval_s`` (or at once when a CDU's event stream says something happened) the devices
that are due are polled in parallel; a device that fails is retried with exponential backoff, marked stale after
``stale_after_s`` and alarmed -- nothing a device answers can crash the loop. Then each cooling loop is evaluated
(alarms raise at once and clear after ``clear_polls`` clean polls), Slurm is made to match the active alarms, and
the fresh readings go into the ledger.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bitten.cooling.actions import ActionEngine, GpuPowerCapper, LoopNode, StateStore
from bitten.cooling.alarms import AlarmTracker, evaluate
from bitten.cooling.config import AgentConfig
from bitten.cooling.events import EventListener
from bitten.cooling.ledger import Ledger
from bitten.cooling.modbus import DeviceError, MeterReading, ModbusMeter
from bitten.cooling.physics import PhysicsError, Properties, coolant_properties, divergence, heat_kw
from bitten.cooling.redfish import CduReading, RedfishCdu
from bitten.core.retry import Backoff
from bitten.core.scontrol import Nodes, Scontrol
from bitten.site.model import ALARM_KINDS, COUNTER_QUANTITIES, AlarmAction, Coolant

log = logging.getLogger("bitten.cooling.agent")


@dataclass
class DeviceState:
    name: str
    kind: str  # "cdu" or "modbus"
    last_ok: float | None = None
    last_attempt: float | None = None
    failures: int = 0
    next_attempt: float = 0.0
    last_error: str = ""
    errors_total: int = 0
    garbage_total: int = 0
    duration_s: float = 0.0
    fresh: bool = False  # polled successfully in the current cycle

    def stale(self, now: float, stale_after: float, started: float) -> bool:
        reference = self.last_ok if self.last_ok is not None else started
        return now - reference > stale_after


@dataclass
class ConnectorView:
    side: str
    id: str
    supply_c: float | None
    return_c: float | None
    delta_k: float | None
    flow_lpm: float | None
    heat_computed_kw: float | None
    heat_reported_kw: float | None
    divergence: float | None
    setpoint_c: float | None
    props: Properties | None


@dataclass
class CduView:
    reading: CduReading
    connectors: list[ConnectorView] = field(default_factory=list)


@dataclass
class MeterView:
    reading: MeterReading
    heat_computed_kw: float | None = None
    heat_reported_kw: float | None = None
    divergence: float | None = None


def cdu_view(reading: CduReading, coolant: Coolant | None) -> CduView:
    """Heat per connector from rho*cp*flow*dT (the coolant's own properties) beside what the CDU reports."""
    view = CduView(reading)
    for conn in reading.connectors:
        delta = None
        if conn.supply_c is not None and conn.return_c is not None:
            delta = conn.return_c - conn.supply_c
        elif conn.delta_c_reported is not None:
            delta = conn.delta_c_reported
        props = computed = None
        if delta is not None and conn.flow_lpm is not None:
            mean = ((conn.supply_c or 0) + (conn.return_c or 0)) / 2 if conn.supply_c is not None and \
                conn.return_c is not None else (conn.supply_c or conn.return_c or 30.0)
            # the rack side carries the CDU's coolant; the facility side is the plant's (water unless configured)
            try:
                if conn.side == "secondary":
                    props = coolant_properties(coolant, reading.density_kg_m3, reading.specific_heat_kj_kg_k, mean)
                else:
                    props = coolant_properties(None, None, None, mean)
                computed = heat_kw(props, conn.flow_lpm, delta)
            except PhysicsError as exc:
                log.warning("%s: %s", reading.cdu, exc)
        view.connectors.append(ConnectorView(
            conn.side, conn.id, conn.supply_c, conn.return_c, delta, conn.flow_lpm, computed, conn.heat_reported_kw,
            divergence(computed, conn.heat_reported_kw),
            conn.supply_setpoint.set_point if conn.supply_setpoint else None, props))
    return view


def meter_view(reading: MeterReading) -> MeterView:
    """A heat meter's own heat beside the heat its flow and temperatures imply (district heating water)."""
    view = MeterView(reading, heat_reported_kw=reading.by_quantity("heat_power"))
    supply, ret, flow = (reading.by_quantity("supply_temperature"), reading.by_quantity("return_temperature"),
                         reading.by_quantity("flow"))
    if supply is not None and ret is not None and flow is not None:
        try:
            props = coolant_properties(None, None, None, (supply + ret) / 2)
            view.heat_computed_kw = heat_kw(props, flow, abs(supply - ret))
            view.divergence = divergence(view.heat_computed_kw, view.heat_reported_kw)
        except PhysicsError:
            pass
    return view


#: the longest wait between attempts at a device that fails: one that comes back is seen again within about a
#: minute, and one request a minute to a device that is down costs nothing
RETRY_CAP_S = 60.0


def poll_backoff(poll_interval: float) -> Backoff:
    """When to try a failing device again: the poll interval, doubling per failure, capped, jittered."""
    return Backoff(initial=poll_interval, maximum=max(RETRY_CAP_S, poll_interval), jitter=0.2)


class Agent:
    def __init__(self, config: AgentConfig, *, slurm: Nodes | None = None, capper: GpuPowerCapper | None = None,
                 request_timeout: float = 5.0) -> None:
        self.config = config
        self.retry = poll_backoff(config.poll_interval_s)
        self.started = time.time()
        self.cdus: dict[str, RedfishCdu] = {
            name: RedfishCdu(name, c.url, c.cdu_id, username=c.username, password=c.password, auth=c.auth,
                             ca_file=c.ca_file, timeout=request_timeout)
            for name, c in config.cdus.items()}
        self.meters: dict[str, ModbusMeter] = {
            name: ModbusMeter(name, d, config.register_maps[d.register_map], timeout=request_timeout)
            for name, d in config.modbus.items()}
        self.devices: dict[str, DeviceState] = {
            **{n: DeviceState(n, "cdu") for n in self.cdus}, **{n: DeviceState(n, "modbus") for n in self.meters}}
        self.cdu_views: dict[str, CduView] = {}
        self.meter_views: dict[str, MeterView] = {}
        self.tracker = AlarmTracker(config.clear_polls)
        self.store = StateStore(config.state_path)
        self.store.load_alarms(self.tracker)
        self.ledger = Ledger(config.ledger_path, config.ledger.max_gap_s)
        if slurm is None and config.slurm_actions:
            slurm = Scontrol(config.scontrol)
        if capper is None and config.gpu_power_command:
            capper = GpuPowerCapper(config.gpu_power_command)
        self.engine = ActionEngine(self.store, slurm if config.slurm_actions else None, capper)
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.stop = threading.Event()
        self._forced: set[str] = set()
        self.pool = ThreadPoolExecutor(max_workers=max(1, min(16, len(self.devices))), thread_name_prefix="poll")
        self.listeners: list[EventListener] = []
        self.events_total = 0
        self.cycles = 0
        self.year = datetime.now(UTC).year
        self.year_totals: dict[str, float | None] = {}
        self.year_gaps: dict[str, int] = {}
        self._refresh_year_totals()

    # --- polling ------------------------------------------------------------------------------------------
    def _poll_device(self, name: str) -> tuple[str, Any, BaseException | None, float]:
        start = time.monotonic()
        try:
            result: Any = self.cdus[name].read() if name in self.cdus else self.meters[name].read()
            return name, result, None, time.monotonic() - start
        except Exception as exc:
            return name, None, exc, time.monotonic() - start

    def poll_once(self, only: set[str] | None = None) -> None:
        now = time.time()
        due = [n for n, st in self.devices.items()
               if (only is None and now >= st.next_attempt) or (only is not None and n in only)]
        for st in self.devices.values():
            st.fresh = False
        results = list(self.pool.map(self._poll_device, due))
        now = time.time()
        with self.lock:
            for name, result, error, duration in results:
                self._absorb(name, result, error, duration, now)
        self._evaluate(now)
        self._account()
        self.cycles += 1

    def _absorb(self, name: str, result: Any, error: BaseException | None, duration: float, now: float) -> None:
        st = self.devices[name]
        st.last_attempt, st.duration_s = now, duration
        if error is not None:
            st.failures += 1
            st.errors_total += 1
            st.last_error = f"{error.__class__.__name__}: {error}"[:300]
            st.next_attempt = now + self.retry.delay(st.failures)
            level = logging.WARNING if st.failures in (1, 5) or st.failures % 50 == 0 else logging.DEBUG
            log.log(level, "%s: poll failed (%d in a row, next try in %.0f s): %s", name, st.failures,
                    st.next_attempt - now, st.last_error)
            if not isinstance(error, DeviceError):
                log.debug("%s: unexpected error", name, exc_info=error)
            return
        if st.failures:
            log.info("%s: answering again after %d failed poll(s)", name, st.failures)
        st.failures, st.last_ok, st.fresh, st.next_attempt = 0, now, True, 0.0
        if isinstance(result, CduReading):
            st.garbage_total += len(result.garbage)
            coolant_name = self.config.cdus[name].coolant
            self.cdu_views[name] = cdu_view(result, self.config.coolants.get(coolant_name) if coolant_name else None)
        elif isinstance(result, MeterReading):
            self.meter_views[name] = meter_view(result)

    # --- alarms and actions ---------------------------------------------------------------------------------
    def loop_nodes(self, loop: str) -> list[LoopNode]:
        return [LoopNode(n.name, n.gpus, n.gpu_max_power_watts) for n in self.config.loops[loop].nodes]

    def _evaluate(self, now: float) -> None:
        for name, loop in self.config.loops.items():
            st = self.devices[loop.cdu]
            findings: dict[str, str] = {}
            evaluated = {"stale"}
            if st.fresh and loop.cdu in self.cdu_views:
                findings = evaluate(self.cdu_views[loop.cdu].reading, loop.limits)
                evaluated.update(k for k in ALARM_KINDS if k != "stale")
            if st.stale(now, self.config.stale_after_s, self.started):
                since = "never answered" if st.last_ok is None else f"no good reading for {now - st.last_ok:.0f} s"
                findings["stale"] = f"CDU {loop.cdu} {since} ({st.last_error or 'no error recorded'})"
            actions: dict[str, AlarmAction] = {str(k): v for k, v in loop.actions.items()}
            for t in self.tracker.update(name, findings, now, frozenset(evaluated)):
                alarm = self.tracker.kinds(name).get(t.kind)
                self.store.save_transition(t, alarm.since if alarm else now)
                if t.raised:
                    log.warning("alarm %s raised on loop %s: %s", t.kind, name, t.detail)
                else:
                    log.warning("alarm %s cleared on loop %s", t.kind, name)
                    self.engine.cleared(name, self.loop_nodes(name), t.kind, self.tracker.kinds(name), actions)
            active = self.tracker.kinds(name)
            if active:
                self.engine.enforce(name, loop.cdu, self.loop_nodes(name), active, actions)

    # --- ledger ---------------------------------------------------------------------------------------------
    def _account(self) -> None:
        if datetime.now(UTC).year != self.year:
            self.year = datetime.now(UTC).year
            self._refresh_year_totals()
        samples: list[tuple[str, str, str, float, float]] = []
        for channel, sources in self.config.ledger.channels().items():
            for src in sources:
                if src.device is not None and src.register_name is not None:
                    st = self.devices.get(src.device)
                    mview = self.meter_views.get(src.device)
                    if st is None or not st.fresh or mview is None:
                        continue
                    point = mview.reading.points.get(src.register_name)
                    if point is None or point.value is None:
                        continue
                    quantity = point.quantity or ""
                    kind = "counter" if quantity in COUNTER_QUANTITIES else (
                        "level" if channel == "waste_heat_temperature" else "power")
                    samples.append((channel, src.label, kind, mview.reading.timestamp, point.value))
                elif src.cdu is not None:
                    st = self.devices.get(src.cdu)
                    cview = self.cdu_views.get(src.cdu)
                    if st is None or not st.fresh or cview is None:
                        continue
                    conn = next((c for c in cview.connectors if c.side == src.side), None)
                    value = None if conn is None else (
                        conn.heat_computed_kw if src.method == "computed" else conn.heat_reported_kw)
                    if value is not None:
                        samples.append((channel, src.label, "power", cview.reading.timestamp, value))
        if not samples:
            return
        try:
            with self.ledger.batch():
                for channel, label, kind, ts, value in samples:
                    added = self.ledger.record(channel, label, kind, ts, value)  # type: ignore[arg-type]
                    if added is not None and kind != "level":
                        self.year_totals[channel] = (self.year_totals.get(channel) or 0.0) + added
        except Exception:
            log.exception("ledger write failed; the readings of this cycle are not recorded")

    def _refresh_year_totals(self) -> None:
        start = datetime(self.year, 1, 1, tzinfo=UTC).timestamp()
        end = datetime(self.year + 1, 1, 1, tzinfo=UTC).timestamp()
        for channel in self.config.ledger.channels():
            total = self.ledger.total(channel, start, end)
            self.year_totals[channel] = total.value
            self.year_gaps[channel] = len(total.gaps)

    # --- running --------------------------------------------------------------------------------------------
    def on_event(self, cdu: str, payload: dict[str, Any]) -> None:
        self.events_total += 1
        log.info("event from %s: %s", cdu, str(payload)[:200])
        with self.lock:
            self._forced.add(cdu)
        self.wake.set()

    def start_listeners(self) -> None:
        for name, cdu in self.cdus.items():
            if self.config.cdus[name].events:
                listener = EventListener(cdu, self.on_event, self.stop)
                listener.start()
                self.listeners.append(listener)

    def run(self, cycles: int | None = None, on_cycle: Callable[[Agent], None] | None = None) -> None:
        """Poll until stopped (or for ``cycles`` cycles); events wake it early for the CDU that sent them."""
        self.start_listeners()
        next_tick = time.monotonic()
        done = 0
        while not self.stop.is_set():
            self.poll_once()
            done += 1
            if on_cycle:
                on_cycle(self)
            if cycles is not None and done >= cycles:
                break
            next_tick += self.config.poll_interval_s
            while not self.stop.is_set():
                remaining = next_tick - time.monotonic()
                if remaining <= 0:
                    break
                if self.wake.wait(remaining):
                    self.wake.clear()
                    with self.lock:
                        forced, self._forced = self._forced, set()
                    if forced:
                        self.poll_once(only=forced)
            if time.monotonic() - next_tick > self.config.poll_interval_s:
                next_tick = time.monotonic()  # fell behind (slow devices): do not try to catch up in a burst

    def close(self) -> None:
        self.stop.set()
        self.wake.set()
        self.pool.shutdown(wait=True)
        for meter in self.meters.values():
            meter.close()
        self.ledger.close()
        self.store.close()
