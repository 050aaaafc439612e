"""The agent's view of Slurm: node states, drain and resume (each read back), and the jobs on a loop's nodes.

A small interface, so the alarm logic is unit-tested with an in-memory cluster and runs for real (``Scontrol``)
against slurmctld in the Molecule scenario. Every change returns what Slurm shows afterwards, so the agent reports
what Slurm did, not what it asked for (``scontrol update ... state=resume`` exits 1 when one node is not
responding, although it lifted every drain).
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bitten.gpu.slurm import parse_nodes

MAX_REASON = 200
_UNSAFE = re.compile(r"[=\"\r\n\t]")
JOB_ID = re.compile(r"^\d+(_\d+)?$")
log = logging.getLogger("bitten.cooling.slurm")


class SlurmError(RuntimeError):
    pass


@dataclass(frozen=True)
class NodeState:
    name: str
    #: Slurm's state with flags, e.g. IDLE, IDLE+DRAIN, MIXED+DRAIN, DOWN+DRAIN+NOT_RESPONDING
    state: str
    reason: str | None = None

    @property
    def flags(self) -> frozenset[str]:
        return frozenset(part.rstrip("*~#!%$@^-") for part in self.state.upper().split("+"))

    @property
    def base(self) -> str:
        return self.state.upper().split("+")[0].rstrip("*~#!%$@^-")

    @property
    def drained(self) -> bool:
        return bool({"DRAIN", "DRAINED", "DRAINING"} & self.flags)

    @property
    def down(self) -> bool:
        return "DOWN" in self.flags or "NOT_RESPONDING" in self.flags


def sanitise_reason(text: str, limit: int = MAX_REASON) -> str:
    text = text.replace('"', "'").replace("=", ":")
    text = re.sub(r"[\r\n\t]+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class ReasonPrefix:
    """Every reason the agent sets starts with ``prefix``, and it only ever resumes nodes whose reason does."""

    prefix: str

    def reason(self, text: str) -> str:
        return sanitise_reason(f"{self.prefix} {text}")

    def owns(self, node: NodeState) -> bool:
        return bool(node.reason and node.reason.startswith(self.prefix))


REASON = ReasonPrefix("bitten-cooling:")
#: kept for callers of the old name
REASON_PREFIX = REASON.prefix


class Slurm(Protocol):
    def node_states(self, nodes: Sequence[str]) -> dict[str, NodeState]: ...

    def drain(self, nodes: Sequence[str], reason: str) -> dict[str, NodeState]: ...

    def resume(self, nodes: Sequence[str]) -> dict[str, NodeState]: ...

    def jobs_on(self, nodes: Sequence[str]) -> list[str]: ...

    def requeue(self, jobs: Sequence[str], nodes: Sequence[str]) -> list[str]: ...

    def cancel(self, jobs: Sequence[str], nodes: Sequence[str]) -> list[str]: ...


def parse_show_node(text: str) -> dict[str, NodeState]:
    """Parse `scontrol show node -o` (one node per line) with the GPU health check's parser."""
    return {name: NodeState(name, node.state, node.reason or None) for name, node in parse_nodes(text).items()}


class Scontrol:
    """Slurm through its command line on a host with slurm.conf and munge (the controller)."""

    def __init__(self, argv: Sequence[str] = ("scontrol",), timeout: float = 20.0,
                 squeue: Sequence[str] = ("squeue",), scancel: Sequence[str] = ("scancel",)) -> None:
        self.argv = list(argv)
        self.squeue = list(squeue)
        self.scancel = list(scancel)
        self.timeout = timeout

    def _exec(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SlurmError(f"{' '.join(argv)}: {exc}") from exc

    def _run(self, *args: str) -> str:
        proc = self._exec([*self.argv, *args])
        if proc.returncode != 0:
            raise SlurmError(f"scontrol {' '.join(args)}: exit {proc.returncode}: {proc.stderr.strip()}")
        return proc.stdout

    def node_states(self, nodes: Sequence[str]) -> dict[str, NodeState]:
        if not nodes:
            return {}
        shown = parse_show_node(self._run("show", "node", "-o", ",".join(nodes)))
        return {n: shown[n] for n in nodes if n in shown}

    def _update(self, nodes: Sequence[str], *fields: str) -> dict[str, NodeState]:
        proc = self._exec([*self.argv, "update", f"nodename={','.join(nodes)}", *fields])
        after = self.node_states(nodes)  # what Slurm did, whatever scontrol's exit says
        if proc.returncode != 0:
            if not after:
                raise SlurmError(f"scontrol update {' '.join(fields)}: exit {proc.returncode}: "
                                 f"{proc.stderr.strip()}")
            log.info("scontrol update %s of %s: exit %d (%s); the states read back decide", " ".join(fields),
                     ",".join(nodes), proc.returncode, proc.stderr.strip()[:200])
        return after

    def drain(self, nodes: Sequence[str], reason: str) -> dict[str, NodeState]:
        if _UNSAFE.search(reason) or not reason.strip():
            raise SlurmError("a drain reason must not contain '=', '\"' or a line break (it would not parse back)")
        return self._update(nodes, "state=drain", f"reason={reason}")

    def resume(self, nodes: Sequence[str]) -> dict[str, NodeState]:
        return self._update(nodes, "state=resume")

    def jobs_on(self, nodes: Sequence[str]) -> list[str]:
        proc = self._exec([*self.squeue, "-h", "-t", "RUNNING", "-w", ",".join(nodes), "-o", "%A"])
        if proc.returncode != 0:
            raise SlurmError(f"squeue -w {','.join(nodes)}: exit {proc.returncode}: {proc.stderr.strip()}")
        return sorted({line.strip() for line in proc.stdout.splitlines() if JOB_ID.match(line.strip())})

    def requeue(self, jobs: Sequence[str], nodes: Sequence[str]) -> list[str]:
        self._exec([*self.argv, "requeue", ",".join(jobs)])
        return [j for j in self.jobs_on(nodes) if j in set(jobs)]

    def cancel(self, jobs: Sequence[str], nodes: Sequence[str]) -> list[str]:
        self._exec([*self.scancel, *jobs])
        return [j for j in self.jobs_on(nodes) if j in set(jobs)]


class HelperSlurm(Scontrol):
    """Changes through the privileged helper (bitten.cooling.helper, run by sudo with a fixed argument list: it
    drains, resumes, requeues and cancels only on the nodes of the agent's loops); reads (node states, the jobs on
    a node) as the agent's own user with scontrol and squeue, which need no privilege."""

    def __init__(self, helper: Sequence[str], argv: Sequence[str] = ("scontrol",), timeout: float = 30.0) -> None:
        super().__init__(argv, timeout)
        self.helper = list(helper)

    def ask(self, request: dict[str, object]) -> dict[str, object]:
        """One request to the helper; its JSON answer, or SlurmError with why it refused or failed."""
        try:
            proc = subprocess.run(self.helper, input=json.dumps(request), capture_output=True, text=True,
                                  timeout=self.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SlurmError(f"{' '.join(self.helper)}: {exc}") from exc
        try:
            answer = json.loads(proc.stdout or "{}")
        except ValueError:
            answer = {}
        if not isinstance(answer, dict) or not answer.get("ok"):
            why = answer.get("refused") or answer.get("error") if isinstance(answer, dict) else None
            raise SlurmError(f"the helper {'refused' if proc.returncode == 2 else 'failed'} {request.get('action')}: "
                             f"{why or proc.stderr.strip()[:300] or f'exit {proc.returncode}'}")
        return answer

    def _states(self, answer: dict[str, object]) -> dict[str, NodeState]:
        nodes = answer.get("nodes")
        out: dict[str, NodeState] = {}
        for name, node in (nodes.items() if isinstance(nodes, dict) else []):
            if isinstance(node, dict):
                out[str(name)] = NodeState(str(name), str(node.get("state", "")), node.get("reason") or None)
        return out

    def drain(self, nodes: Sequence[str], reason: str) -> dict[str, NodeState]:
        return self._states(self.ask({"action": "drain", "nodes": list(nodes), "reason": reason}))

    def resume(self, nodes: Sequence[str]) -> dict[str, NodeState]:
        return self._states(self.ask({"action": "resume", "nodes": list(nodes)}))

    def _jobs(self, action: str, jobs: Sequence[str], nodes: Sequence[str]) -> list[str]:
        left = self.ask({"action": action, "nodes": list(nodes), "jobs": list(jobs)}).get("jobs_left")
        return [str(j) for j in left] if isinstance(left, list) else list(jobs)

    def requeue(self, jobs: Sequence[str], nodes: Sequence[str]) -> list[str]:
        return self._jobs("requeue", jobs, nodes)

    def cancel(self, jobs: Sequence[str], nodes: Sequence[str]) -> list[str]:
        return self._jobs("cancel", jobs, nodes)

    def cap(self, node: str, watts: int) -> None:
        self.ask({"action": "cap", "nodes": [node], "watts": watts})


class MemorySlurm:
    """An in-memory cluster with Slurm's drain/resume semantics, for unit tests and the bench (a test double:
    the real path is Scontrol against slurmctld, exercised in the cooling_agent Molecule scenario)."""

    def __init__(self, nodes: Sequence[str]) -> None:
        self.nodes = {n: NodeState(n, "IDLE") for n in nodes}
        self.calls: list[tuple[str, tuple[str, ...], str]] = []
        #: job id -> nodes it runs on
        self.jobs: dict[str, tuple[str, ...]] = {}

    def node_states(self, nodes: Sequence[str]) -> dict[str, NodeState]:
        return {n: self.nodes[n] for n in nodes if n in self.nodes}

    def drain(self, nodes: Sequence[str], reason: str) -> dict[str, NodeState]:
        self.calls.append(("drain", tuple(nodes), reason))
        for n in nodes:
            self.nodes[n] = NodeState(n, f"{self.nodes[n].base}+DRAIN", reason)
        return self.node_states(nodes)

    def resume(self, nodes: Sequence[str]) -> dict[str, NodeState]:
        self.calls.append(("resume", tuple(nodes), ""))
        for n in nodes:
            self.nodes[n] = NodeState(n, self.nodes[n].base)
        return self.node_states(nodes)

    def jobs_on(self, nodes: Sequence[str]) -> list[str]:
        return sorted(j for j, on in self.jobs.items() if set(on) & set(nodes))

    def requeue(self, jobs: Sequence[str], nodes: Sequence[str]) -> list[str]:
        self.calls.append(("requeue", tuple(jobs), ""))
        for j in jobs:
            self.jobs.pop(j, None)
        return []

    def cancel(self, jobs: Sequence[str], nodes: Sequence[str]) -> list[str]:
        self.calls.append(("cancel", tuple(jobs), ""))
        for j in jobs:
            self.jobs.pop(j, None)
        return []
