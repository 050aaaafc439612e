"""The cooling agent: poll CDUs and meters, compute heat, raise alarms and act on them, keep the ledger.

Every device is read on its own schedule, in a worker of its own, within its read deadline (connect, every request,
every byte: ``read_deadline_s``). When a read ends, the device's loops are evaluated and acted on at once, then the
device's readings go into the ledger. So a slow or hung device delays nothing but itself: a leak on a healthy loop
is drained within its own read time while another CDU drips its answer byte by byte. A device that fails is retried
with exponential backoff, marked stale after ``stale_after_s`` (also while a read of it hangs) and alarmed; nothing
a device answers can crash the agent. A CDU's event stream (server-sent events) polls that CDU at once.

Alarms never depend on accounting: the ledger and the state database are supervised stores
(``bitten.cooling.store``). When one is corrupt, locked or full, alarms and drains go on, the store's alarm and
metrics say so, and it is opened again until it works.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bitten.cooling.actions import ActionEngine, GpuPowerCapper, HelperCapper, LoopNode, PowerControl, State
from bitten.cooling.alarms import AlarmTracker, Verdict, evaluate
from bitten.cooling.config import AgentConfig
from bitten.cooling.devices import DEVICE_TYPES, CduView, DeviceType, MeterView, Reader, Sample, cdu_view, meter_view
from bitten.cooling.errors import DeviceError
from bitten.cooling.events import EventListener
from bitten.cooling.ledger import Ledger
from bitten.cooling.nodes import HelperSlurm, LocalSlurm, Slurm
from bitten.cooling.redfish import RedfishCdu
from bitten.cooling.status import AgentStatus, AlarmStatus, DeviceStatus, LoopStatus, StoreStatus
from bitten.cooling.store import Supervised
from bitten.core.retry import Backoff
from bitten.site.model import AlarmAction

__all__ = ["Agent", "CduView", "DeviceState", "MeterView", "cdu_view", "meter_view", "poll_backoff"]

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
    fresh: bool = False  # the latest read succeeded
    #: a read of it is running now (since when, monotonic)
    busy_since: float | None = None

    def stale(self, now: float, stale_after: float, started: float) -> bool:
        reference = self.last_ok if self.last_ok is not None else started
        return now - reference > stale_after


#: the longest wait between attempts at a device that fails: one that comes back is seen again within about a
#: minute, and one request a minute to a device that is down costs nothing
RETRY_CAP_S = 60.0


def poll_backoff(poll_interval: float) -> Backoff:
    """When to try a failing device again: the poll interval, doubling per failure, capped, jittered."""
    return Backoff(initial=poll_interval, maximum=max(RETRY_CAP_S, poll_interval), jitter=0.2)


class Agent:
    def __init__(self, config: AgentConfig, *, slurm: Slurm | None = None, capper: GpuPowerCapper | None = None,
                 power: PowerControl | None = None, request_timeout: float = 5.0) -> None:
        self.config = config
        self.retry = poll_backoff(config.poll_interval_s)
        self.started = time.time()
        timeout = min(request_timeout, config.read_deadline_s)
        #: every device, its type (bitten.cooling.devices) and its client
        self.types: dict[str, DeviceType] = {}
        self.readers: dict[str, Reader] = {}
        for device_type in DEVICE_TYPES:
            for name, entry in device_type.entries(config).items():
                self.types[name] = device_type
                self.readers[name] = device_type.reader(name, entry, config, timeout)
        self.devices: dict[str, DeviceState] = {n: DeviceState(n, t.kind) for n, t in self.types.items()}
        self.loops_of: dict[str, list[str]] = {n: [] for n in self.devices}
        for name, loop in config.loops.items():
            self.loops_of[loop.cdu].append(name)
        #: the latest view of every device that answered (immutable, replaced per reading)
        self.views: dict[str, Any] = {}
        self.lock = threading.RLock()
        self._loop_locks = {name: threading.Lock() for name in config.loops}
        self.tracker = AlarmTracker(config.clear_polls, config.sensor_lost_after_s)
        self.state = State(config.state_path, retry_s=config.store_retry_s)
        self.state.on_loaded = self._restore_alarms
        if self.state.loaded:
            self._restore_alarms(self.state.previous)
        self.year = datetime.now(UTC).year
        self.totals: dict[str, float] = {}
        self.year_totals: dict[str, float] = {}
        self.gaps: dict[str, int] = {}
        self.ledger: Supervised[Ledger] = Supervised(
            "ledger", lambda: Ledger(config.ledger_path, config.ledger.max_gap_s, busy_timeout_s=1.0),
            retry_s=config.store_retry_s, on_open=self._ledger_opened)
        helper = HelperSlurm(config.helper, config.scontrol) if config.helper else None
        if slurm is None and config.slurm_actions:
            slurm = helper or LocalSlurm(config.scontrol)
        if capper is None and config.gpu_power_command:
            capper = HelperCapper(helper) if helper else GpuPowerCapper(config.gpu_power_command)
        power_error = ""
        if power is None and config.bmc_credentials_file and any(n.bmc for lp in config.loops.values()
                                                                 for n in lp.nodes):
            # function-local: only sites that power nodes off load the BMC side
            from bitten.cooling.power import BmcPower
            from bitten.core.redfish.errors import CredentialsError

            try:
                power = BmcPower.from_config(config)
            except CredentialsError as exc:  # the agent still drains; a critical leak says why it cannot power off
                power_error = str(exc)
                log.error("powering nodes off on a critical leak is configured, but: %s", exc)
        self.engine = ActionEngine(self.state, slurm if config.slurm_actions else None, capper, power=power,
                                   power_error=power_error)
        self.wake = threading.Event()
        self.stop = threading.Event()
        self._forced: set[str] = set()
        self._again: set[str] = set()
        self.pool = ThreadPoolExecutor(max_workers=max(2, min(64, len(self.devices) + 2)),
                                       thread_name_prefix="device")
        self.listeners: list[EventListener] = []
        self.events_total = 0
        #: poll intervals begun (run) or poll cycles done (poll_once)
        self.cycles = 0
        #: device reads finished (each read, its alarms, its actions and its accounting)
        self.reads = 0

    # --- stores ---------------------------------------------------------------------------------------------
    def _restore_alarms(self, rows: list[tuple[str, str, str, float]]) -> None:
        from bitten.cooling.alarms import Alarm

        with self.lock:
            for loop, kind, detail, since in rows:
                self.tracker.active.setdefault(loop, {}).setdefault(kind, Alarm(kind, detail, since))

    def _ledger_opened(self, ledger: Ledger) -> None:
        start = datetime(self.year, 1, 1, tzinfo=UTC).timestamp()
        totals, year, gaps = ledger.sums(), ledger.sums(start), ledger.gap_counts()
        with self.lock:
            self.totals, self.year_totals, self.gaps = totals, year, gaps

    @property
    def cdus(self) -> dict[str, RedfishCdu]:
        return {n: r for n, r in self.readers.items() if isinstance(r, RedfishCdu)}

    @property
    def cdu_views(self) -> dict[str, CduView]:
        return {n: v for n, v in self.views.items() if isinstance(v, CduView)}

    @property
    def meter_views(self) -> dict[str, MeterView]:
        return {n: v for n, v in self.views.items() if isinstance(v, MeterView)}

    # --- polling ------------------------------------------------------------------------------------------
    def _read(self, name: str) -> Any:
        return self.readers[name].read()

    def _cycle(self, name: str) -> None:
        """Read one device, then at once evaluate and act on its loops, then account its readings."""
        start = time.monotonic()
        result: Any = None
        error: BaseException | None = None
        try:
            result = self._read(name)
        except Exception as exc:
            error = exc
        try:
            now = time.time()
            with self.lock:
                self._absorb(name, result, error, time.monotonic() - start, now)
            for loop in self.loops_of[name]:
                self._evaluate(loop, now)
            if error is None:
                self._account(name)
        except Exception:
            log.exception("%s: handling its reading failed", name)
        finally:
            with self.lock:
                self.devices[name].busy_since = None
                self.reads += 1
                again = name in self._again
                self._again.discard(name)
            if again:
                self.wake.set()
                with self.lock:
                    self._forced.add(name)

    def _submit(self, names: list[str]) -> list[Future[None]]:
        futures = []
        with self.lock:
            for name in names:
                st = self.devices[name]
                if st.busy_since is not None:
                    self._again.add(name)  # asked again while a read runs: read once more when it ends
                    continue
                st.busy_since = time.monotonic()
                st.next_attempt = time.time() + self.config.poll_interval_s
                futures.append(self.pool.submit(self._cycle, name))
        return futures

    def due(self, now: float) -> list[str]:
        with self.lock:
            return [n for n, st in self.devices.items() if now >= st.next_attempt and st.busy_since is None]

    def poll_once(self, only: set[str] | None = None) -> None:
        """One poll cycle now: read every device that is not backing off after failures (or ``only`` these), and
        wait for them, each within its deadline."""
        now = time.time()
        with self.lock:
            names = sorted(only) if only is not None else [
                n for n, st in self.devices.items() if st.busy_since is None and (
                    st.failures == 0 or now >= st.next_attempt)]
        wait(self._submit(names))
        self._watch(time.time())
        self._stores()
        self.cycles += 1

    def _absorb(self, name: str, result: Any, error: BaseException | None, duration: float, now: float) -> None:
        st = self.devices[name]
        st.last_attempt, st.duration_s = now, duration
        if error is not None:
            st.fresh = False
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
        st.failures, st.last_ok, st.fresh = 0, now, True
        device_type = self.types[name]
        st.garbage_total += device_type.garbage(result)
        self.views[name] = device_type.view(name, result, self.config)

    # --- alarms and actions ---------------------------------------------------------------------------------
    def loop_nodes(self, loop: str) -> list[LoopNode]:
        return [LoopNode(n.name, n.gpus, n.gpu_max_power_watts) for n in self.config.loops[loop].nodes]

    def _verdicts(self, loop: str, now: float) -> dict[str, Verdict]:
        cfg = self.config.loops[loop]
        st = self.devices[cfg.cdu]
        verdicts: dict[str, Verdict] = {}
        view = self.views.get(cfg.cdu)
        reading = self.types[cfg.cdu].loop_reading(view) if view is not None else None
        if st.fresh and reading is not None:
            verdicts = evaluate(reading, cfg.limits)
            verdicts["stale"] = Verdict("clear")
        elif (stale := self._stale(loop, now)) is not None:
            verdicts["stale"] = stale
        return verdicts

    def _stale(self, loop: str, now: float) -> Verdict | None:
        """stale raised, when the loop's CDU has had no good reading for stale_after_s (None otherwise)."""
        cfg = self.config.loops[loop]
        st = self.devices[cfg.cdu]
        if not st.stale(now, self.config.stale_after_s, self.started):
            return None
        since = "never answered" if st.last_ok is None else f"no good reading for {now - st.last_ok:.0f} s"
        busy = f", a read running for {time.monotonic() - st.busy_since:.0f} s" if st.busy_since else ""
        return Verdict("raised", f"CDU {cfg.cdu} {since} ({st.last_error or 'no error recorded'}{busy})", "Warning")

    def _evaluate(self, loop: str, now: float, *, only_stale: bool = False) -> None:
        cfg = self.config.loops[loop]
        with self._loop_locks[loop]:
            with self.lock:
                if only_stale:
                    stale = self._stale(loop, now)
                    if stale is None or "stale" in self.tracker.kinds(loop):
                        return
                    transitions = self.tracker.raise_only(loop, {"stale": stale}, now)
                else:
                    transitions = self.tracker.update(loop, self._verdicts(loop, now), now)
                active = dict(self.tracker.kinds(loop))
                since = {t.kind: (active[t.kind].since if t.kind in active else now) for t in transitions}
            actions: dict[str, AlarmAction] = {str(k): v for k, v in cfg.actions.items()}
            for t in transitions:
                if t.raised:
                    log.warning("alarm %s raised on loop %s: %s", t.kind, loop, t.detail)
            if active:
                self.engine.enforce(loop, cfg.cdu, self.loop_nodes(loop), active, actions)
            for t in transitions:
                if not t.raised:
                    log.warning("alarm %s cleared on loop %s", t.kind, loop)
                    self.engine.cleared(loop, self.loop_nodes(loop), t.kind, active, actions)
            for t in transitions:
                self.state.save_transition(t, since[t.kind])

    def _stores(self) -> None:
        """Open a store again that failed (when its retry is due): accounting comes back by itself."""
        for store in (self.ledger, self.state.db):
            try:
                store.tick()
            except Exception:
                log.exception("%s: reopening failed", store.name)

    def _watch(self, now: float) -> None:
        """Raise stale for loops whose CDU has had no good reading for too long, also while a read of it hangs."""
        for loop in self.config.loops:
            try:
                self._evaluate(loop, now, only_stale=True)
            except Exception:
                log.exception("loop %s: checking for a stale CDU failed", loop)

    # --- ledger ---------------------------------------------------------------------------------------------
    def _samples(self, device: str) -> list[Sample]:
        with self.lock:
            view = self.views.get(device)
        return self.types[device].samples(device, view, self.config) if view is not None else []

    def _account(self, device: str) -> None:
        samples = self._samples(device)
        if not samples:
            return

        def write(ledger: Ledger) -> list[tuple[str, float]]:
            added: list[tuple[str, float]] = []
            gaps_before = ledger.gap_counts()
            with ledger.batch():
                for sample in samples:
                    try:
                        amount = ledger.record(sample.channel, sample.source, sample.kind, sample.timestamp,
                                               sample.value, max_rate=sample.max_rate)
                    except ValueError as exc:
                        log.warning("%s: %s", device, exc)
                        continue
                    if amount is not None and sample.kind != "level":
                        added.append((sample.channel, amount))
            with self.lock:
                self.gaps = {**self.gaps, **{c: n for c, n in ledger.gap_counts().items()
                                             if n != gaps_before.get(c)}}
            return added

        added = self.ledger.call(f"recording the readings of {device}", write, None)
        if not added:
            return
        year = datetime.now(UTC).year
        with self.lock:
            if year != self.year:
                self.year, self.year_totals = year, {}
            for channel, amount in added:
                self.totals[channel] = self.totals.get(channel, 0.0) + amount
                self.year_totals[channel] = self.year_totals.get(channel, 0.0) + amount

    # --- status ---------------------------------------------------------------------------------------------
    def status(self) -> AgentStatus:
        """One consistent, read-only snapshot of what the agent knows (the exporter's and /status's source)."""
        now = time.time()
        with self.lock:
            devices = tuple(DeviceStatus(
                name, st.kind, st.last_ok is not None and st.failures == 0,
                st.stale(now, self.config.stale_after_s, self.started), st.last_ok, st.failures, st.errors_total,
                st.garbage_total, st.duration_s, st.last_error) for name, st in sorted(self.devices.items()))
            loops = tuple(LoopStatus(
                name, cfg.cdu, tuple(n.name for n in cfg.nodes),
                {k: AlarmStatus(k, a.detail, a.since, a.severity) for k, a in self.tracker.kinds(name).items()},
                self.tracker.unknown_kinds(name)) for name, cfg in sorted(self.config.loops.items()))
            stores = tuple(StoreStatus(s.name, s.available, s.errors_total, s.last_error, s.since)
                           for s in (self.ledger, self.state.db))
            return AgentStatus(
                site=self.config.site, time=now, started=self.started, devices=devices,
                views={t.kind: {n: v for n, v in self.views.items() if self.types[n] is t} for t in DEVICE_TYPES},
                loops=loops,
                actions=dict(self.engine.counter), events_total=self.events_total, ledger_totals=dict(self.totals),
                year=self.year, year_totals=dict(self.year_totals), ledger_gaps=dict(self.gaps), stores=stores,
                divergence_warn=self.config.divergence_warn)

    # --- running --------------------------------------------------------------------------------------------
    def on_event(self, cdu: str, payload: dict[str, Any]) -> None:
        with self.lock:
            self.events_total += 1
            self._forced.add(cdu)
        log.info("event from %s: %s", cdu, str(payload)[:200])
        self.wake.set()

    def start_listeners(self) -> None:
        for name, cdu in self.cdus.items():
            if self.config.cdus[name].events:
                listener = EventListener(cdu, self.on_event, self.stop)
                listener.start()
                self.listeners.append(listener)

    def run(self, cycles: int | None = None, on_cycle: Callable[[Agent], None] | None = None) -> None:
        """Poll until stopped (or for ``cycles`` poll intervals): each device when it is due (every poll interval
        after its last read began, or its backoff after a failure), in a worker of its own; an event polls its CDU
        at once. Every interval the stale watch and the stores' reopening run."""
        self.start_listeners()
        interval = self.config.poll_interval_s
        next_tick = time.monotonic()
        while not self.stop.is_set():
            self._submit(self.due(time.time()))
            now_m = time.monotonic()
            if now_m >= next_tick:
                self._watch(time.time())
                self._stores()
                self.cycles += 1
                if on_cycle:
                    on_cycle(self)
                if cycles is not None and self.cycles >= cycles:
                    break
                next_tick += interval
                if now_m - next_tick > interval:
                    next_tick = now_m + interval  # fell behind: do not try to catch up in a burst
            with self.lock:
                idle = [st.next_attempt for st in self.devices.values() if st.busy_since is None]
            until_due = min(idle) - time.time() if idle else interval
            timeout = max(0.0, min(next_tick - time.monotonic(), until_due))
            if self.wake.wait(min(timeout, 1.0)):
                self.wake.clear()
            with self.lock:
                forced, self._forced = self._forced, set()
            if forced:
                self._submit(sorted(forced))

    def close(self) -> None:
        self.stop.set()
        self.wake.set()
        self.pool.shutdown(wait=True)
        for name, reader in self.readers.items():
            try:
                reader.close()  # a session is deleted on the device
            except Exception as exc:
                log.debug("%s: closing: %s", name, exc)
        self.ledger.close()
        self.state.close()
