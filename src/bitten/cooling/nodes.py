"""What the agent does to Slurm: the nodes of its loops (bitten.core.scontrol, the one Slurm module) and the jobs
running on them, always reported as Slurm shows them afterwards.

``Slurm`` is bitten.core.scontrol's ``Nodes`` (node states, drain and resume, each read back) plus the jobs of a set
of nodes (requeue, cancel, each read back). Two implementations:

- ``HelperSlurm`` (the agent on a real site): reads as the agent's own user (``scontrol show node``, ``squeue``
  need no privilege) and asks its privileged helper (bitten.cooling.helper, one fixed sudo command) for every
  change; the helper allows exactly the nodes of the agent's loops.
- ``LocalSlurm``: scontrol, squeue and scancel directly (a lab or test without sudo).

A change is read back even when scontrol exits non-zero: ``scontrol update NodeName=a,b State=RESUME`` exits 1
("Invalid node state specified") when one node does not respond, although it lifted every drain; what Slurm shows
afterwards decides, never scontrol's exit status alone.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Protocol

from bitten.core.process import run
from bitten.core.scontrol import Nodes, NodeState, ReadBackError, Scontrol, ScontrolError

log = logging.getLogger("bitten.cooling.nodes")
JOB_ID = re.compile(r"^\d+(_\d+)?$")


class Slurm(Nodes, Protocol):
    """Nodes, and the jobs running on them. requeue and cancel return the jobs still running afterwards."""

    def jobs_on(self, nodes: Sequence[str]) -> list[str]: ...

    def requeue(self, jobs: Sequence[str], nodes: Sequence[str]) -> list[str]: ...

    def cancel(self, jobs: Sequence[str], nodes: Sequence[str]) -> list[str]: ...


class LocalSlurm(Scontrol):
    """scontrol, squeue and scancel on this host (with slurm.conf and munge), each under a hard time limit."""

    def __init__(self, argv: Sequence[str] = ("scontrol",), timeout: float = 20.0,
                 squeue: Sequence[str] = ("squeue",), scancel: Sequence[str] = ("scancel",)) -> None:
        super().__init__(argv, timeout)
        self.squeue = list(squeue)
        self.scancel = list(scancel)

    def update(self, nodes: Sequence[str], fields: Mapping[str, str]) -> dict[str, NodeState]:
        try:
            return super().update(nodes, fields)
        except ReadBackError:
            raise
        except ScontrolError as exc:
            after = self.node_states(nodes)  # what Slurm did, whatever scontrol's exit says
            if not after:
                raise
            log.info("%s; the states read back decide", exc)
            return after

    def jobs_on(self, nodes: Sequence[str]) -> list[str]:
        result = run([*self.squeue, "-h", "-t", "RUNNING", "-w", ",".join(nodes), "-o", "%A"], self.timeout)
        if result.missing or result.timed_out or result.returncode != 0:
            raise ScontrolError(f"squeue -w {','.join(nodes)}: {result.stderr.strip() or 'failed'}")
        return sorted({line.strip() for line in result.stdout.splitlines() if JOB_ID.match(line.strip())})

    def requeue(self, jobs: Sequence[str], nodes: Sequence[str]) -> list[str]:
        run([*self.argv, "requeue", ",".join(jobs)], self.timeout)
        return [j for j in self.jobs_on(nodes) if j in set(jobs)]

    def cancel(self, jobs: Sequence[str], nodes: Sequence[str]) -> list[str]:
        run([*self.scancel, *jobs], self.timeout)
        return [j for j in self.jobs_on(nodes) if j in set(jobs)]


class HelperSlurm(LocalSlurm):
    """Reads as the agent's user; every change through the privileged helper (bitten.cooling.helper)."""

    def __init__(self, helper: Sequence[str], argv: Sequence[str] = ("scontrol",), timeout: float = 30.0) -> None:
        super().__init__(argv, timeout)
        self.helper = list(helper)

    def ask(self, request: dict[str, object]) -> dict[str, object]:
        """One request to the helper; its JSON answer, or ScontrolError with why it refused or failed."""
        result = run(self.helper, self.timeout, stdin=json.dumps(request))
        try:
            answer = json.loads(result.stdout or "{}")
        except ValueError:
            answer = {}
        if not isinstance(answer, dict) or not answer.get("ok"):
            why = (answer.get("refused") or answer.get("error")) if isinstance(answer, dict) else None
            refused = result.returncode == 2
            raise ScontrolError(f"the helper {'refused' if refused else 'failed'} {request.get('action')}: "
                                f"{why or result.stderr.strip()[:300] or f'exit {result.returncode}'}")
        return answer

    @staticmethod
    def _states(answer: dict[str, object]) -> dict[str, NodeState]:
        nodes = answer.get("nodes")
        out: dict[str, NodeState] = {}
        for name, node in (nodes.items() if isinstance(nodes, dict) else []):
            if isinstance(node, dict):
                reason = node.get("reason")
                out[str(name)] = NodeState(str(name), str(node.get("state", "")),
                                           str(reason) if reason else None)
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
