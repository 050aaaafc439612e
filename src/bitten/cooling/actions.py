"""What alarms do: drain the Slurm nodes a loop cools (with a reason), cap their GPU power, and resume them when
an alarm clears where that is configured (never after a leak). Every action is logged, persisted, and idempotent:
a node that is already drained is left alone, and only nodes the agent drained itself are ever resumed.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bitten.cooling.alarms import Alarm, AlarmTracker, Transition
from bitten.core.scontrol import Nodes, NodeState, ReasonPrefix, ScontrolError
from bitten.site.model import AlarmAction

log = logging.getLogger("bitten.cooling.actions")

#: every reason the agent sets starts with this, and it only ever resumes nodes whose reason does
REASON = ReasonPrefix("bitten-cooling:")


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
    """The agent's own durable state (alarms, capped GPUs, the action log) in SQLite beside the ledger."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.lock = threading.Lock()
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript("""
            CREATE TABLE IF NOT EXISTS alarms(loop TEXT, kind TEXT, detail TEXT, since REAL, PRIMARY KEY(loop, kind));
            CREATE TABLE IF NOT EXISTS capped(node TEXT PRIMARY KEY, watts INTEGER, since REAL);
            CREATE TABLE IF NOT EXISTS actions(ts REAL, loop TEXT, kind TEXT, action TEXT, nodes TEXT, result TEXT,
                                               detail TEXT);
        """)

    def load_alarms(self, tracker: AlarmTracker) -> None:
        with self.lock:
            for loop, kind, detail, since in self.db.execute("SELECT loop, kind, detail, since FROM alarms"):
                tracker.active.setdefault(loop, {})[kind] = Alarm(kind, detail, since)

    def save_transition(self, t: Transition, since: float) -> None:
        with self.lock:
            if t.raised:
                self.db.execute("INSERT OR REPLACE INTO alarms VALUES (?, ?, ?, ?)", (t.loop, t.kind, t.detail, since))
            else:
                self.db.execute("DELETE FROM alarms WHERE loop = ? AND kind = ?", (t.loop, t.kind))

    def capped(self) -> dict[str, int]:
        with self.lock:
            return {n: w for n, w in self.db.execute("SELECT node, watts FROM capped")}

    def set_capped(self, node: str, watts: int | None) -> None:
        with self.lock:
            if watts is None:
                self.db.execute("DELETE FROM capped WHERE node = ?", (node,))
            else:
                self.db.execute("INSERT OR REPLACE INTO capped VALUES (?, ?, ?)", (node, watts, time.time()))

    def log_action(self, rec: ActionRecord) -> None:
        with self.lock:
            self.db.execute("INSERT INTO actions VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (rec.timestamp, rec.loop, rec.kind, rec.action, json.dumps(rec.nodes), rec.result,
                             rec.detail))

    def actions(self, limit: int = 100) -> list[ActionRecord]:
        with self.lock:
            rows = self.db.execute("SELECT * FROM actions ORDER BY ts DESC LIMIT ?", (limit,)).fetchall()
        return [ActionRecord(r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), r[5], r[6]) for r in rows]

    def close(self) -> None:
        self.db.close()


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


def reason_for(loop: str, cdu: str, kind: str, detail: str) -> str:
    return REASON.reason(f"{kind} on {cdu} (loop {loop}): {detail}")


def _shown(name: str, states: dict[str, NodeState]) -> str:
    node = states.get(name)
    return f"{name} {node.state}" if node else f"{name} not shown"


class ActionEngine:
    def __init__(self, store: StateStore, slurm: Nodes | None, capper: GpuPowerCapper | None,
                 counter: dict[tuple[str, str], int] | None = None) -> None:
        self.store = store
        self.slurm = slurm
        self.capper = capper
        #: (action, result) -> count, exported as bitten_cooling_actions_total
        self.counter: dict[tuple[str, str], int] = counter if counter is not None else {}

    def _record(self, loop: str, kind: str, action: str, nodes: Sequence[str], result: str, detail: str) -> None:
        rec = ActionRecord(time.time(), loop, kind, action, tuple(nodes), result, detail)
        self.store.log_action(rec)
        self.counter[(action, result)] = self.counter.get((action, result), 0) + 1
        level = logging.WARNING if result in ("done", "failed", "dry-run") else logging.INFO
        log.log(level, "%s %s on loop %s (%s): %s [%s]", action, ",".join(nodes) or "-", loop, kind, result, detail)

    def enforce(self, loop: str, cdu: str, nodes: Sequence[LoopNode], alarms: dict[str, Alarm],
                actions: dict[str, AlarmAction]) -> None:
        """Make Slurm match the active alarms of a loop: drained while any alarm that drains is active.

        Called on every poll of a loop with active alarms; cheap when nothing has to change (one node query).
        """
        draining = [a for a in alarms.values() if actions[a.kind].drain]
        if draining and nodes:
            first = min(draining, key=lambda a: a.since)
            self._drain(loop, first.kind, [n.name for n in nodes], reason_for(loop, cdu, first.kind, first.detail))
        for alarm in alarms.values():
            pct = actions[alarm.kind].cap_gpu_power_percent
            if pct is not None:
                self._cap(loop, alarm.kind, nodes, pct)

    def cleared(self, loop: str, nodes: Sequence[LoopNode], kind: str, remaining: dict[str, Alarm],
                actions: dict[str, AlarmAction]) -> None:
        """An alarm cleared: resume (and uncap) where configured and nothing else still holds the nodes."""
        action = actions[kind]
        if kind == "leak" or not action.resume_on_clear:
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
    def _drain(self, loop: str, kind: str, names: list[str], reason: str) -> None:
        """Drain the loop's nodes that are not drained yet (a DOWN node too: it would come back by itself), and
        record what Slurm shows afterwards."""
        if self.slurm is None:
            return
        try:
            states = self.slurm.node_states(names)
            todo = [n for n in names if n in states and not states[n].drained]
            unknown = [n for n in names if n not in states]
            if unknown:
                self._record(loop, kind, "drain", unknown, "failed", "Slurm does not know these nodes")
            if not todo:
                return
            after = self.slurm.drain(todo, reason)
        except ScontrolError as exc:
            self._record(loop, kind, "drain", names, "failed", str(exc))
            return
        missed = [n for n in todo if n not in after or not after[n].drained]
        if missed:
            self._record(loop, kind, "drain", missed, "failed",
                         "Slurm did not drain them: " + ", ".join(_shown(n, after) for n in missed))
        if done := [n for n in todo if n not in missed]:
            self._record(loop, kind, "drain", done, "done", reason)

    def _resume(self, loop: str, kind: str, names: list[str]) -> None:
        """Resume the loop's nodes the agent drained (its reason prefix); record what Slurm shows afterwards."""
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
            self._record(loop, kind, "resume", done, "done", "alarm cleared")

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
