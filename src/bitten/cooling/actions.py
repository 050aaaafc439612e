"""What alarms do: drain the Slurm nodes a loop cools (with a reason), requeue or cancel their jobs, power them off
through their BMCs on a critical leak, cap their GPU power, and resume them when an alarm clears where that is
configured (never after a leak).

Every action is logged, persisted, idempotent and read back: a node already drained is left alone, only nodes the
agent drained itself are ever resumed, a node already off is not powered off again, and each result says what
Slurm or the BMC shows afterwards, not what was asked for. Requeue, cancel and power off are off by default.

The agent's durable state (alarms, capped GPUs, the action log) lives in memory while it runs and in SQLite behind
it (:class:`StateStore` under a :class:`bitten.cooling.store.Supervised`): a corrupt, locked or full database costs
the record, never an action.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bitten.cooling.alarms import Alarm, Transition
from bitten.cooling.nodes import HelperSlurm, Slurm
from bitten.cooling.reason import REASON  # every reason the agent sets starts with it
from bitten.cooling.store import Supervised
from bitten.core.scontrol import NodeState, ScontrolError
from bitten.site.model import AlarmAction

log = logging.getLogger("bitten.cooling.actions")


@dataclass(frozen=True)
class LoopNode:
    name: str
    gpus: int = 0
    gpu_max_power_watts: int | None = None


@dataclass(frozen=True)
class ActionRecord:
    timestamp: float
    loop: str
    kind: str
    action: str
    nodes: tuple[str, ...]
    result: str
    detail: str


class StateStore:
    """The agent's state database (SQLite beside the ledger); its errors are the caller's (see State)."""

    def __init__(self, path: Path, busy_timeout_s: float = 1.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=busy_timeout_s)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript("""
                CREATE TABLE IF NOT EXISTS alarms(loop TEXT, kind TEXT, detail TEXT, since REAL,
                                                  PRIMARY KEY(loop, kind));
                CREATE TABLE IF NOT EXISTS capped(node TEXT PRIMARY KEY, watts INTEGER, since REAL);
                CREATE TABLE IF NOT EXISTS actions(ts REAL, loop TEXT, kind TEXT, action TEXT, nodes TEXT,
                                                   result TEXT, detail TEXT);
            """)
        except BaseException:
            self.db.close()
            raise

    def alarms(self) -> list[tuple[str, str, str, float]]:
        return [(str(a), str(b), str(c), float(d)) for a, b, c, d in
                self.db.execute("SELECT loop, kind, detail, since FROM alarms")]

    def save_alarm(self, loop: str, kind: str, detail: str, since: float) -> None:
        self.db.execute("INSERT OR REPLACE INTO alarms VALUES (?, ?, ?, ?)", (loop, kind, detail, since))

    def delete_alarm(self, loop: str, kind: str) -> None:
        self.db.execute("DELETE FROM alarms WHERE loop = ? AND kind = ?", (loop, kind))

    def capped(self) -> dict[str, int]:
        return {str(n): int(w) for n, w in self.db.execute("SELECT node, watts FROM capped")}

    def set_capped(self, node: str, watts: int | None) -> None:
        if watts is None:
            self.db.execute("DELETE FROM capped WHERE node = ?", (node,))
        else:
            self.db.execute("INSERT OR REPLACE INTO capped VALUES (?, ?, ?)", (node, watts, time.time()))

    def replace(self, alarms: dict[tuple[str, str], tuple[str, float]], capped: dict[str, int]) -> None:
        """Write back what the agent kept in memory while the database was away."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("DELETE FROM alarms")
            self.db.executemany("INSERT INTO alarms VALUES (?, ?, ?, ?)",
                                [(loop, kind, detail, since) for (loop, kind), (detail, since) in alarms.items()])
            self.db.execute("DELETE FROM capped")
            self.db.executemany("INSERT INTO capped VALUES (?, ?, ?)",
                                [(node, watts, time.time()) for node, watts in capped.items()])
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def log_action(self, rec: ActionRecord) -> None:
        self.db.execute("INSERT INTO actions VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (rec.timestamp, rec.loop, rec.kind, rec.action, json.dumps(rec.nodes), rec.result,
                         rec.detail))

    def actions(self, limit: int = 100) -> list[ActionRecord]:
        rows = self.db.execute("SELECT * FROM actions ORDER BY ts DESC LIMIT ?", (limit,)).fetchall()
        return [ActionRecord(r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), r[5], r[6]) for r in rows]

    def close(self) -> None:
        self.db.close()


class State:
    """The agent's state: memory is the truth while it runs, the database keeps it across restarts.

    When the database fails, actions go on and their records wait in memory (the last ``PENDING`` of them); when it
    returns, memory is written back. On the first successful open, what the last run left (alarms, capped GPUs) is
    merged with what this run already knows, and ``on_loaded`` hands the alarms to the agent.
    """

    PENDING = 1000

    def __init__(self, path: Path, *, retry_s: float = 30.0) -> None:
        self.lock = threading.RLock()
        self.alarms: dict[tuple[str, str], tuple[str, float]] = {}
        self.capped_watts: dict[str, int] = {}
        self.pending: deque[ActionRecord] = deque(maxlen=self.PENDING)
        self.recent: deque[ActionRecord] = deque(maxlen=200)
        self.loaded = False
        self.on_loaded: Callable[[list[tuple[str, str, str, float]]], None] | None = None
        self.previous: list[tuple[str, str, str, float]] = []
        self.db: Supervised[StateStore] = Supervised("state database", lambda: StateStore(path), retry_s=retry_s,
                                                     on_open=self._opened)

    def _opened(self, store: StateStore) -> None:
        with self.lock:
            if not self.loaded:
                self.previous = store.alarms()
                for loop, kind, detail, since in self.previous:
                    self.alarms.setdefault((loop, kind), (detail, since))
                for node, watts in store.capped().items():
                    self.capped_watts.setdefault(node, watts)
                self.loaded = True
                if self.on_loaded is not None:
                    self.on_loaded(self.previous)
            store.replace(self.alarms, self.capped_watts)
            while self.pending:
                store.log_action(self.pending[0])
                self.pending.popleft()

    def save_transition(self, t: Transition, since: float) -> None:
        with self.lock:
            if t.raised:
                self.alarms[(t.loop, t.kind)] = (t.detail, since)
            else:
                self.alarms.pop((t.loop, t.kind), None)
        if t.raised:
            self.db.call("saving an alarm", lambda s: s.save_alarm(t.loop, t.kind, t.detail, since), None)
        else:
            self.db.call("saving an alarm", lambda s: s.delete_alarm(t.loop, t.kind), None)

    def capped(self) -> dict[str, int]:
        with self.lock:
            return dict(self.capped_watts)

    def set_capped(self, node: str, watts: int | None) -> None:
        with self.lock:
            if watts is None:
                self.capped_watts.pop(node, None)
            else:
                self.capped_watts[node] = watts
        self.db.call("saving a GPU cap", lambda s: s.set_capped(node, watts), None)

    def log_action(self, rec: ActionRecord) -> None:
        with self.lock:
            self.recent.append(rec)
            if self.db.available and not self.pending and self.db.call("logging an action", lambda s: _logged(s, rec),
                                                                        False):
                return
            self.pending.append(rec)

    def actions(self, limit: int = 100) -> list[ActionRecord]:
        """The latest actions, newest first (from memory: this run's, also while the database is away)."""
        with self.lock:
            return list(reversed(self.recent))[:limit]

    def close(self) -> None:
        self.db.close()


def _logged(store: StateStore, rec: ActionRecord) -> bool:
    store.log_action(rec)
    return True


class GpuPowerCapper:
    """Caps a node's GPUs by running a configured argv ({node}, {watts} substituted), e.g. nvidia-smi over ssh."""

    def __init__(self, argv: Sequence[str], timeout: float = 30.0) -> None:
        self.argv = list(argv)
        self.timeout = timeout

    def command(self, node: str, watts: int) -> list[str]:
        return [part.replace("{node}", node).replace("{watts}", str(watts)) for part in self.argv]

    def set_limit(self, node: str, watts: int) -> None:
        argv = self.command(node, watts)
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuntimeError(f"{' '.join(argv)}: {exc}") from exc
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()[:200]}")


class HelperCapper(GpuPowerCapper):
    """Caps GPUs through the privileged helper (the node and the watts checked against its policy)."""

    def __init__(self, slurm: HelperSlurm) -> None:
        super().__init__(())
        self.slurm = slurm

    def set_limit(self, node: str, watts: int) -> None:
        try:
            self.slurm.cap(node, watts)
        except ScontrolError as exc:
            raise RuntimeError(str(exc)) from exc


class PowerControl(Protocol):
    """Powers a node off through its BMC and reads the power state back (bitten.cooling.power.BmcPower)."""

    def power_state(self, node: str) -> str: ...

    def power_off(self, node: str) -> str: ...


def reason_for(loop: str, cdu: str, kind: str, detail: str) -> str:
    return REASON.reason(f"{kind} on {cdu} (loop {loop}): {detail}")


def _shown(name: str, states: dict[str, NodeState]) -> str:
    node = states.get(name)
    return f"{name} {node.state}" if node else f"{name} not shown by Slurm"


class ActionEngine:
    def __init__(self, store: State, slurm: Slurm | None, capper: GpuPowerCapper | None,
                 counter: dict[tuple[str, str], int] | None = None, power: PowerControl | None = None,
                 power_error: str = "") -> None:
        self.store = store
        self.slurm = slurm
        self.capper = capper
        self.power = power
        #: why powering off is configured but cannot be done (the BMC credentials file is missing or unsafe)
        self.power_error = power_error
        #: (action, result) -> count, exported as bitten_cooling_actions_total
        self.counter: dict[tuple[str, str], int] = counter if counter is not None else {}
        #: one-off actions done for an alarm (loop, kind, since, action): not repeated every poll
        self._done: set[tuple[str, str, float, str]] = set()
        self._lock = threading.Lock()

    def _record(self, loop: str, kind: str, action: str, nodes: Sequence[str], result: str, detail: str) -> None:
        rec = ActionRecord(time.time(), loop, kind, action, tuple(nodes), result, detail)
        with self._lock:
            self.counter[(action, result)] = self.counter.get((action, result), 0) + 1
        level = logging.WARNING if result in ("done", "failed", "dry-run") else logging.INFO
        log.log(level, "%s %s on loop %s (%s): %s [%s]", action, ",".join(nodes) or "-", loop, kind, result, detail)
        self.store.log_action(rec)

    def enforce(self, loop: str, cdu: str, nodes: Sequence[LoopNode], alarms: dict[str, Alarm],
                actions: dict[str, AlarmAction]) -> None:
        """Make Slurm (and the BMCs) match the active alarms of a loop: drained while any alarm that drains is
        active; then, once per alarm, its jobs requeued or cancelled and (a Critical leak) the nodes powered off.

        Called on every poll of a loop with active alarms; cheap when nothing has to change (one node query).
        """
        names = [n.name for n in nodes]
        draining = [a for a in alarms.values() if actions[a.kind].drain]
        drained: list[str] = []
        if draining and nodes:
            first = min(draining, key=lambda a: a.since)
            drained = self._drain(loop, first.kind, names, reason_for(loop, cdu, first.kind, first.detail))
        for alarm in sorted(alarms.values(), key=lambda a: a.since):
            action = actions[alarm.kind]
            kind = alarm.kind
            if action.jobs != "keep" and drained:
                how = action.jobs
                self._once(loop, alarm, f"jobs_{how}", lambda: self._jobs(loop, kind, drained, how))  # noqa: B023
            if action.power_off and alarm.severity == "Critical" and nodes:
                self._once(loop, alarm, "power_off", lambda: self._power_off(loop, kind, names))  # noqa: B023
            pct = action.cap_gpu_power_percent
            if pct is not None:
                self._cap(loop, alarm.kind, nodes, pct)

    def _once(self, loop: str, alarm: Alarm, action: str, fn: Callable[[], bool]) -> None:
        """Run ``fn`` (called at once, never kept) until it succeeds once for this alarm."""
        key = (loop, alarm.kind, alarm.since, action)
        if key in self._done:
            return
        if fn():
            self._done.add(key)

    def cleared(self, loop: str, nodes: Sequence[LoopNode], kind: str, remaining: dict[str, Alarm],
                actions: dict[str, AlarmAction]) -> None:
        """An alarm cleared: resume (and uncap) where configured and nothing else still holds the nodes."""
        self._done = {d for d in self._done if not (d[0] == loop and d[1] == kind)}
        action = actions[kind]
        if kind == "leak" or not action.resume_on_clear or action.power_off:
            if action.drain:
                self._record(loop, kind, "resume", [n.name for n in nodes], "held",
                             "alarm cleared; nodes stay drained until an operator resumes them"
                             + (" (after a leak, always)" if kind == "leak" else ""))
            return
        if any(actions[a.kind].drain or actions[a.kind].cap_gpu_power_percent for a in remaining.values()):
            self._record(loop, kind, "resume", [n.name for n in nodes], "held",
                         "other alarms still active: " + ", ".join(sorted(remaining)))
            return
        if self.capper is not None:
            capped = self.store.capped()
            for node in nodes:
                if node.name in capped and node.gpu_max_power_watts:
                    self._set_power(loop, kind, node.name, node.gpu_max_power_watts, restore=True)
        if action.drain:
            self._resume(loop, kind, [n.name for n in nodes])

    # --- Slurm ----------------------------------------------------------------------------------------------
    def _drain(self, loop: str, kind: str, names: list[str], reason: str) -> list[str]:
        """Drain the loop's nodes that are not drained yet; the nodes Slurm shows drained afterwards."""
        if self.slurm is None:
            return []
        try:
            states = self.slurm.node_states(names)
            unknown = [n for n in names if n not in states]
            if unknown:
                self._record(loop, kind, "drain", unknown, "failed", "Slurm does not know these nodes")
            todo = [n for n in names if n in states and not states[n].drained]
            if not todo:
                return [n for n in names if n in states and states[n].drained]
            after = self.slurm.drain(todo, reason)
        except ScontrolError as exc:
            self._record(loop, kind, "drain", names, "failed", str(exc))
            return []
        missed = [n for n in todo if n not in after or not after[n].drained]
        if missed:
            self._record(loop, kind, "drain", missed, "failed",
                         "Slurm does not show them drained: " + ", ".join(_shown(n, after) for n in missed))
        if done := [n for n in todo if n not in missed]:
            self._record(loop, kind, "drain", done, "done", reason)
        return [n for n in names if (n in after and after[n].drained) or (n in states and states[n].drained)]

    def _resume(self, loop: str, kind: str, names: list[str]) -> None:
        if self.slurm is None:
            return
        try:
            states = self.slurm.node_states(names)
            todo = [n for n in names if n in states and states[n].drained and REASON.owns(states[n])]
            others = [n for n in names if n in states and states[n].drained and not REASON.owns(states[n])]
            if others:
                self._record(loop, kind, "resume", others, "skipped", "drained for another reason: left alone")
            if not todo:
                return
            after = self.slurm.resume(todo)
        except ScontrolError as exc:
            self._record(loop, kind, "resume", names, "failed", str(exc))
            return
        missed = [n for n in todo if n not in after or after[n].drained]
        if missed:
            self._record(loop, kind, "resume", missed, "failed",
                         "Slurm still shows them drained: " + ", ".join(_shown(n, after) for n in missed))
        if done := [n for n in todo if n not in missed]:
            down = [n for n in done if after[n].down]
            self._record(loop, kind, "resume", done, "done", "alarm cleared" + (
                f"; {', '.join(down)} still down (not responding): back when slurmd answers" if down else ""))

    def _jobs(self, loop: str, kind: str, names: list[str], how: str) -> bool:
        """Requeue or cancel the jobs running on the (drained) nodes; True once Slurm shows none left there."""
        assert self.slurm is not None
        action = f"jobs_{how}"
        try:
            jobs = self.slurm.jobs_on(names)
            if not jobs:
                return True
            left = self.slurm.requeue(jobs, names) if how == "requeue" else self.slurm.cancel(jobs, names)
        except ScontrolError as exc:
            self._record(loop, kind, action, names, "failed", str(exc))
            return False
        if left:
            self._record(loop, kind, action, names, "failed",
                         f"jobs still running on the nodes after {how}: {', '.join(left)}")
            return False
        self._record(loop, kind, action, names, "done",
                     f"{'requeued' if how == 'requeue' else 'cancelled'} job(s) {', '.join(jobs)}")
        return True

    # --- BMC power --------------------------------------------------------------------------------------------
    def _power_off(self, loop: str, kind: str, names: list[str]) -> bool:
        """Power the nodes off through their BMCs (once; a node already off is left alone); True when every node
        reads back Off."""
        if self.power is None:
            self._record(loop, kind, "power_off", names, "failed",
                         self.power_error or "no BMC access configured on the agent host")
            return True  # not retried every poll: the operator has to configure it
        off, failed = [], []
        for name in names:
            try:
                if self.power.power_state(name) == "Off":
                    continue
                state = self.power.power_off(name)
            except Exception as exc:  # one BMC failing never stops the others
                failed.append(name)
                self._record(loop, kind, "power_off", [name], "failed", str(exc)[:300])
                continue
            if state == "Off":
                off.append(name)
            else:
                failed.append(name)
                self._record(loop, kind, "power_off", [name], "failed", f"the BMC reports power {state} afterwards")
        if off:
            self._record(loop, kind, "power_off", off, "done", "critical leak: powered off (BMC reads Off)")
        return not failed

    # --- GPU power --------------------------------------------------------------------------------------------
    def _cap(self, loop: str, kind: str, nodes: Sequence[LoopNode], pct: int) -> None:
        if self.capper is None:
            return
        capped = self.store.capped()
        for node in nodes:
            if not node.gpus or not node.gpu_max_power_watts:
                continue
            watts = node.gpu_max_power_watts * pct // 100
            if capped.get(node.name) == watts:
                continue
            self._set_power(loop, kind, node.name, watts, restore=False)

    def _set_power(self, loop: str, kind: str, node: str, watts: int, *, restore: bool) -> None:
        assert self.capper is not None
        action = "uncap_gpu_power" if restore else "cap_gpu_power"
        try:
            self.capper.set_limit(node, watts)
        except RuntimeError as exc:
            self._record(loop, kind, action, [node], "failed", str(exc))
            return
        self.store.set_capped(node, None if restore else watts)
        self._record(loop, kind, action, [node], "done", f"{watts} W per GPU")
