"""The energy controller: signals in, policies decided, actuators driven (or, in shadow mode, only logged).

One cycle every ``interval_s``:

1. Signals: the grid (Energi Data Service, cached, refreshed every ``refresh_s``) and the heat network (Modbus).
   A signal that is not usable leaves its triggers unknown: the policy keeps its state ("no change").
2. Interlocks: the cooling agent's active alarms and Slurm's node states (GPU health). They always win: no change on
   the nodes of an alarmed loop, on drained or down nodes, on an alarmed loop's CDU; no release of held jobs while
   any loop is alarmed; nothing at all while the cooling state is unknown.
3. Each policy's machine (bitten.energy.policy: hysteresis, minimum hold and release times) gives its state.
4. The wanted state: per partition the lowest active cap (never below the floor or outside the GPU's range; no cap:
   the GPU's maximum), holds for the flexible QoS of active hold policies, set points of active CDU policies (the
   original set point back when released).
5. Mode act: each actuator whose read-back state differs from the wanted one is driven and read back; mode shadow:
   the same decisions, recorded as "shadow: not applied". The mode is the site's (controller.mode) unless an
   operator overrides it (``bitten-energy mode act|shadow``, a file in the state directory).

Every decision -- a policy switching, an action taken or refused, an interlock, a signal that is unknown -- is
appended to decisions.jsonl with its inputs, rule, expected effect and what each actuator reported.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bitten.energy.actuators import GpuCapper, Holder, Report, Setpoint, stoppable_sleep
from bitten.energy.config import ControllerConfig
from bitten.energy.energinet import DATASETS, Cache, EnergiDataService, top_hours_rank
from bitten.energy.heatnet import HeatNetwork
from bitten.energy.interlocks import CoolingAlarms, Interlocks, read_interlocks
from bitten.energy.policy import Decision, PolicyMachine
from bitten.energy.signals import Reading, SignalHealth
from bitten.energy.slurm import Scontrol, Slurm

log = logging.getLogger("bitten.energy.controller")
MODES = ("shadow", "act")
#: read every GPU's limit back at least this often even when nothing changed (another actor may have changed it)
READBACK_EVERY = 10


@dataclass
class Cycle:
    """What one cycle saw and did (the metrics and the lab summary read the latest)."""

    at: float
    mode: str
    readings: dict[str, Reading]
    interlocks: Interlocks
    decisions: dict[str, Decision]
    cap_w: dict[str, int | None]
    reports: list[Report] = field(default_factory=list)
    duration_s: float = 0.0


class Controller:
    def __init__(self, cfg: ControllerConfig, *, slurm: Slurm | None = None, capper: GpuCapper | None = None,
                 grid: EnergiDataService | None = None, heat: HeatNetwork | None = None,
                 cooling: CoolingAlarms | None = None, setpoints: dict[str, Setpoint] | None = None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] | None = None) -> None:
        self.cfg = cfg
        self.clock = clock
        #: set by the service's SIGTERM handler: the loop ends, and so do the actuators' retries (their default
        #: sleep waits on it)
        self.stop = threading.Event()
        if sleep is None:
            sleep = stoppable_sleep(self.stop)
        self.health = SignalHealth()
        Path(cfg.state_dir).mkdir(parents=True, exist_ok=True)
        self.grid = grid if grid is not None else (
            EnergiDataService(cfg.grid, cache=Cache(cfg.cache_path), health=self.health, clock=clock)
            if cfg.grid else None)
        if self.grid is not None:
            self.grid.health = self.health
        self.heat = heat if heat is not None else (
            HeatNetwork(cfg.heat.signals, cfg.heat.device, cfg.heat.register_map, health=self.health, clock=clock)
            if cfg.heat else None)
        if self.heat is not None:
            self.heat.health = self.health
        self.slurm = slurm or Scontrol(cfg.scontrol, cfg.squeue)
        self.capper = capper or GpuCapper(cfg.gpu_power_command, deadline_s=cfg.actuator_deadline_s, sleep=sleep)
        self.holder = Holder(self.slurm, cfg.actuator_deadline_s, sleep)
        self.cooling = cooling or CoolingAlarms(cfg.cooling_metrics_url)
        self.setpoints = setpoints if setpoints is not None else self._setpoints(sleep)
        self.machines = {p.name: PolicyMachine(p) for p in cfg.policies if p.enabled}
        #: node -> the GPU limits it last read back (None: unknown)
        self.limits: dict[str, list[float] | None] = {}
        self.cdu_original: dict[str, float] = {}
        self.cycles = 0
        self.last: Cycle | None = None
        self.recent: list[dict[str, Any]] = []
        self.counters: dict[tuple[str, str], int] = {}
        self.changes: dict[str, int] = {}
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="actuate")
        self.nodepower = self._nodepower()
        self.gpupower = self._gpupower()
        #: poller name -> when it polls next (time.monotonic)
        self._next_poll: dict[str, float] = {}
        #: the last text recorded per subject, so that a repeated decision is logged once until it changes
        self._said: dict[str, str] = {}
        self._load_state()

    def _setpoints(self, sleep: Callable[[float], None]) -> dict[str, Setpoint]:
        # imported here, not at the top: only this path needs it, and start-up stays light
        from bitten.cooling.redfish import RedfishCdu

        out = {}
        for p in self.cfg.policies:
            if p.action.type == "cdu_setpoint":
                c = self.cfg.cdus[p.action.cdu]
                device = RedfishCdu(p.action.cdu, c.url, c.cdu_id, username=c.username, password=c.password,
                                    auth=c.auth, ca_file=c.ca_file)
                out[p.action.cdu] = Setpoint(p.action.cdu, device, p.action.side,
                                             deadline_s=self.cfg.actuator_deadline_s, sleep=sleep)
        return out

    def _nodepower(self) -> Any:
        """The BMC poller (node power, energy and coolant heat into nodes.sqlite), when the site has BMCs and the
        environment gives credentials; else None (logged: attribution then estimates node energy)."""
        np_cfg = self.cfg.node_power
        if np_cfg is None or not np_cfg.nodes:
            return None
        # imported here, not at the top: only this path needs it, and start-up stays light
        from bitten.cooling.ledger import Ledger
        from bitten.core.redfish.connection import Connection
        from bitten.core.redfish.endpoint import Endpoint, Tls
        from bitten.core.redfish.errors import CredentialsError
        from bitten.energy.nodepower import NodePowerPoller
        from bitten.hardware.credentials import CredentialStore

        try:
            store = CredentialStore.from_env()
            creds = {name: store.for_host(name) for name in np_cfg.nodes}
        except CredentialsError as exc:
            log.warning("node power not polled: %s", exc)
            return None
        tls = Tls(ca_file=np_cfg.ca_file)

        def factory(name: str) -> Callable[[], Any]:
            bmc = np_cfg.nodes[name]
            return lambda: Connection(Endpoint(name, bmc.url, flavour=bmc.flavour), creds[name], tls)

        return NodePowerPoller({n: factory(n) for n in np_cfg.nodes}, Ledger(self.cfg.nodes_ledger_path),
                               chassis_id=np_cfg.chassis_id, stale_after_s=np_cfg.stale_after_s,
                               max_w={n: b.max_w for n, b in np_cfg.nodes.items()}, clock=self.clock)

    def _gpupower(self) -> Any:
        """The dcgm-exporter poller (GPU power and energy into nodes.sqlite), when the site enables it."""
        gp = self.cfg.gpu_power
        if gp is None or not gp.urls:
            return None
        # imported here, not at the top: only this path needs it, and start-up stays light
        from bitten.cooling.ledger import Ledger
        from bitten.energy.gpupower import GpuPowerPoller, fetch

        return GpuPowerPoller(gp.urls, Ledger(self.cfg.nodes_ledger_path), max_w=gp.max_w,
                              stale_after_s=gp.stale_after_s, get=lambda url, t: fetch(url, t, gp.ca_file),
                              clock=self.clock)

    # --- state that survives a restart ------------------------------------------------------------------------
    def _load_state(self) -> None:
        path = self.cfg.state_path
        if not path.exists():
            return
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            log.warning("state file %s unreadable (%s): starting from nothing held or changed", path, exc)
            return
        self.holder.held = {q: set(ids) for q, ids in doc.get("held", {}).items()}
        self.cdu_original = {k: float(v) for k, v in doc.get("cdu_original", {}).items()}
        for name, st in doc.get("policies", {}).items():
            if name in self.machines:
                self.machines[name].active = bool(st.get("active"))
                self.machines[name].since = st.get("since")

    def _save_state(self) -> None:
        doc = {"held": {q: sorted(ids) for q, ids in self.holder.held.items()}, "cdu_original": self.cdu_original,
               "policies": {n: {"active": m.active, "since": m.since} for n, m in self.machines.items()}}
        tmp = self.cfg.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.cfg.state_path)

    # --- mode -------------------------------------------------------------------------------------------------
    def mode(self) -> str:
        try:
            override = self.cfg.mode_path.read_text().strip()
        except OSError:
            return self.cfg.mode
        return override if override in MODES else self.cfg.mode

    # --- one cycle --------------------------------------------------------------------------------------------
    def signals(self, now: float) -> tuple[dict[str, Reading], dict[str, int | None]]:
        readings: dict[str, Reading] = {}
        ranks: dict[str, int | None] = {}
        if self.grid is not None:
            self.grid.refresh()
            readings.update(self.grid.readings(now))
            points, complete = self.grid.price_day(now)
            ranks["price"], _ = top_hours_rank(points, complete, now, DATASETS[self.grid.cfg.price_dataset].step_s)
            if not readings["price"].usable:
                ranks["price"] = None
        if self.heat is not None:
            readings.update(self.heat.readings())
        return readings, ranks

    def cycle(self) -> Cycle:
        started = time.monotonic()
        now = self.clock()
        mode = self.mode()
        readings, ranks = self.signals(now)
        values = {k: (r.value if r.usable else None) for k, r in readings.items()}
        nodes = sorted({n.name for entries in self.cfg.partitions.values() for n in entries})
        locks = read_interlocks(self.cooling, self.slurm, nodes)
        decisions = {name: m.update(now, values, ranks) for name, m in self.machines.items()}
        inputs = {k: r.as_dict() for k, r in readings.items()}
        for name, d in decisions.items():
            if d.changed:
                self.changes[name] = self.changes.get(name, 0) + 1
                self._record(now, mode, name, "switched " + ("on" if d.active else "off"), d.reason, inputs, locks,
                             self._expected(name, d.active), [])
            elif d.reason.startswith("no change: a signal is unknown"):
                self._record_once(now, mode, name, "no change: unknown signal", d.reason, inputs, locks)
        cap_w = self._wanted_caps()
        cyc = Cycle(now, mode, readings, locks, decisions, cap_w)
        cyc.reports.extend(self._caps(now, mode, cap_w, locks, inputs))
        cyc.reports.extend(self._holds(now, mode, locks, inputs))
        cyc.reports.extend(self._setpoint_actions(now, mode, locks, inputs))
        self._save_state()
        cyc.duration_s = time.monotonic() - started
        with self.lock:
            self.last = cyc
            self.cycles += 1
        return cyc

    def _expected(self, policy: str, active: bool) -> str:
        p = next(p for p in self.cfg.policies if p.name == policy)
        a = p.action
        if a.type == "gpu_cap":
            entries = self.cfg.partitions.get(a.partition, ())
            gpus = sum(n.gpus for n in entries)
            if active:
                saved = sum(n.gpus * max(0, (n.max_w or a.watts_per_gpu) - a.watts_per_gpu) for n in entries)
                return (f"cap {gpus} GPUs of partition {a.partition} to {a.watts_per_gpu} W each: at most "
                        f"{saved / 1000:.1f} kW less at full load; capped jobs run slower")
            return f"lift the cap on partition {a.partition}'s {gpus} GPUs (back to each GPU's maximum)"
        if a.type == "hold":
            return (f"hold the pending jobs of QoS {a.qos} (running jobs run on)" if active
                    else f"release the jobs of QoS {a.qos} the controller held")
        return (f"ask CDU {a.cdu} for {a.supply_temperature_c:g} degC supply ({a.side}): hotter water, less "
                "heat-pump lift" if active else f"give CDU {a.cdu} its set point back")

    def _wanted_caps(self) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        for p in self.cfg.policies:
            if p.action.type != "gpu_cap" or p.name not in self.machines:
                continue
            part = p.action.partition
            out.setdefault(part, None)
            if self.machines[p.name].active:
                current = out[part]
                out[part] = p.action.watts_per_gpu if current is None else min(current, p.action.watts_per_gpu)
        return out

    def _caps(self, now: float, mode: str, cap_w: dict[str, int | None], locks: Interlocks,
              inputs: dict[str, Any]) -> list[Report]:
        """Drive each node's GPU limit to the wanted one; read back every node now and then in any case."""
        sets: list[tuple[str, int]] = []
        reads: list[str] = []
        for part, watts in cap_w.items():
            for node in self.cfg.partitions.get(part, ()):
                if not node.gpus or node.max_w is None or node.min_w is None:
                    continue
                target = min(node.max_w, node.max_w if watts is None else max(watts, node.floor_w or 0, node.min_w))
                have = self.limits.get(node.name)
                matches = have is not None and all(abs(x - target) <= 1 for x in have)
                if matches:
                    if self.cycles % READBACK_EVERY == 0:
                        reads.append(node.name)
                    continue
                why = self._node_locked(node.name, node.loop, locks)
                if why:
                    self._record_once(now, mode, f"cap:{node.name}", f"interlock: no change on {node.name}", why,
                                      inputs, locks)
                    continue
                if have is None:
                    reads.append(node.name)  # learn what the GPUs have before deciding to write
                    continue
                sets.append((node.name, target))
        reports: list[Report] = []
        for r in self.pool.map(lambda n: self.capper.apply(n, None), reads):
            self.limits[r.target] = [float(x) for x in r.reported] if r.ok and r.reported else None
            self._count(r, "read" if r.ok else "failed")
            if not r.ok:
                reports.append(r)
        if mode != "act":
            shadow = [Report("gpu_power_limit", n, w, error="shadow: not applied") for n, w in sets]
            for r in shadow:
                self._count(r, "shadow")
            if shadow:
                self._record_once(now, mode, "caps", "shadow: would set GPU limits",
                                  ", ".join(f"{r.target}={r.requested} W" for r in shadow), inputs, locks,
                                  [r.as_dict() for r in shadow])
            return reports + shadow
        done = list(self.pool.map(lambda j: self.capper.apply(j[0], j[1]), sets))
        for r in done:
            self.limits[r.target] = [float(x) for x in r.reported] if r.reported else None
            self._count(r, "ok" if r.ok else "failed")
        if done:
            self._record(now, mode, "caps", "set GPU power limits", "wanted caps per partition: "
                         + ", ".join(f"{p}={w or 'max'}" for p, w in cap_w.items()), inputs, locks,
                         "each GPU at the wanted limit (read back below)", [r.as_dict() for r in done])
        return reports + done

    def _node_locked(self, node: str, loop: str | None, locks: Interlocks) -> str:
        if not locks.cooling_known:
            return f"cooling state unknown ({locks.cooling_reason})"
        if locks.loop_alarmed(loop):
            return f"cooling alarm on loop {loop}: {', '.join((locks.cooling or {}).get(loop or '', []))}"
        if node in locks.nodes:
            return f"GPU health / Slurm: {locks.nodes[node]}"
        return ""

    def _holds(self, now: float, mode: str, locks: Interlocks, inputs: dict[str, Any]) -> list[Report]:
        wanted: dict[str, bool] = {}
        for p in self.cfg.policies:
            if p.action.type == "hold" and p.name in self.machines:
                wanted[p.action.qos] = wanted.get(p.action.qos, False) or self.machines[p.name].active
        reports = []
        for qos, hold in wanted.items():
            mine = self.holder.held.get(qos, set())
            if not hold and not mine:
                continue
            if not hold and locks.any_cooling_alarm:
                self._record_once(now, mode, f"release:{qos}", "interlock: release waits",
                                  "a cooling alarm is active or the cooling state is unknown: held jobs stay held",
                                  inputs, locks)
                continue
            if mode != "act":
                r = Report("slurm_hold" if hold else "slurm_release", qos, "hold" if hold else sorted(mine),
                           error="shadow: not applied")
                self._count(r, "shadow")
                self._record_once(now, mode, f"hold:{qos}", f"shadow: would {'hold' if hold else 'release'} "
                                  f"jobs of QoS {qos}", "", inputs, locks, [r.as_dict()])
                reports.append(r)
                continue
            r = self.holder.hold(qos) if hold else self.holder.release(qos)
            self._count(r, "ok" if r.ok else "failed")
            if r.requested or r.error or not hold:
                self._record(now, mode, f"hold:{qos}", "held pending jobs" if hold else "released held jobs", "",
                             inputs, locks, "flexible jobs wait" if hold else "flexible jobs may start",
                             [r.as_dict()])
            reports.append(r)
        return reports

    def _setpoint_actions(self, now: float, mode: str, locks: Interlocks, inputs: dict[str, Any]) -> list[Report]:
        reports = []
        for p in self.cfg.policies:
            if p.action.type != "cdu_setpoint" or p.name not in self.machines:
                continue
            a = p.action
            active = self.machines[p.name].active
            if not active and a.cdu not in self.cdu_original:
                continue
            cdu = self.cfg.cdus[a.cdu]
            if not locks.cooling_known or any(locks.loop_alarmed(loop) for loop in cdu.loops):
                self._record_once(now, mode, f"cdu:{a.cdu}", "interlock: no set-point change",
                                  locks.cooling_reason or f"cooling alarm on {', '.join(cdu.loops)}", inputs, locks)
                continue
            device = self.setpoints[a.cdu]
            target = a.supply_temperature_c if active else self.cdu_original[a.cdu]
            if mode != "act":
                r = Report("cdu_supply_setpoint", a.cdu, target, error="shadow: not applied")
                self._count(r, "shadow")
                self._record_once(now, mode, f"cdu:{a.cdu}", f"shadow: would set {a.cdu} to {target:g} degC", "",
                                  inputs, locks, [r.as_dict()])
                reports.append(r)
                continue
            try:
                current, _, _ = device.current()
            except Exception as exc:
                r = Report("cdu_supply_setpoint", a.cdu, target, error=f"read: {exc}"[:300])
                self._count(r, "failed")
                reports.append(r)
                continue
            if current is not None and abs(current - target) < 0.05:
                if not active:
                    self.cdu_original.pop(a.cdu, None)
                continue
            if active and a.cdu not in self.cdu_original and current is not None:
                self.cdu_original[a.cdu] = current
            r = device.apply(target)
            self._count(r, "ok" if r.ok else "failed")
            if r.ok and not active:
                self.cdu_original.pop(a.cdu, None)
            self._record(now, mode, f"cdu:{a.cdu}", "set the supply temperature", f"policy {p.name} "
                         f"{'active' if active else 'released'}", inputs, locks, self._expected(p.name, active),
                         [r.as_dict()])
            reports.append(r)
        return reports

    # --- decision log -----------------------------------------------------------------------------------------
    def _count(self, r: Report, result: str) -> None:
        key = (r.actuator, result)
        self.counters[key] = self.counters.get(key, 0) + 1

    def _record_once(self, now: float, mode: str, key: str, what: str, rule: str, inputs: dict[str, Any],
                     locks: Interlocks, actions: list[dict[str, Any]] | None = None) -> None:
        """Record a repeated decision once until it changes (a blocked action is logged when it starts)."""
        text = f"{what}|{rule}"
        if self._said.get(key) == text:
            return
        self._said[key] = text
        self._record(now, mode, key, what, rule, inputs, locks, "none: no change", actions or [])

    def _record(self, now: float, mode: str, subject: str, what: str, rule: str, inputs: dict[str, Any],
                locks: Interlocks, expected: str, actions: list[dict[str, Any]]) -> None:
        entry = {"time": now, "mode": mode, "subject": subject, "decision": what, "rule": rule,
                 "inputs": inputs, "interlocks": locks.as_dict(), "expected": expected, "actuators": actions}
        line = json.dumps(entry, sort_keys=True)
        with open(self.cfg.decisions_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
        log.info("%s: %s (%s)", subject, what, rule[:200])
        with self.lock:
            self.recent = [*self.recent[-49:], entry]

    # --- running ----------------------------------------------------------------------------------------------
    def run(self, cycles: int | None = None) -> None:
        done = 0
        while not self.stop.is_set():
            try:
                self.cycle()
            except Exception:
                log.exception("cycle failed; nothing was changed after the failure")
            self._poll_meters()
            done += 1
            if cycles is not None and done >= cycles:
                break
            self.stop.wait(self.cfg.interval_s)

    def _poll_meters(self) -> None:
        """The BMC and DCGM pollers, each at its own interval; a poller's failure is logged, never the loop's."""
        now = time.monotonic()
        for name, poller, entry in (("node power", self.nodepower, self.cfg.node_power),
                                    ("GPU power", self.gpupower, self.cfg.gpu_power)):
            if poller is None or entry is None or now < self._next_poll.get(name, 0.0):
                continue
            self._next_poll[name] = now + entry.poll_interval_s
            try:
                poller.poll()
            except Exception:
                log.exception("%s poll failed", name)

    def close(self) -> None:
        self.stop.set()
        self.pool.shutdown(wait=True)
        if self.nodepower is not None:
            self.nodepower.close()
        if self.gpupower is not None:
            self.gpupower.close()
        if self.heat is not None:
            self.heat.close()


def read_decisions(path: Path, last: int = 20) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()[-last:]
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
