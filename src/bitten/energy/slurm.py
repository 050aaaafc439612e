"""The controller's view of Slurm: node states (for the GPU-health interlock), a flexible QoS's pending jobs, and
hold/release with read-back. A thin seam: it moves onto bitten.core.scontrol (the one Slurm module) when that lands;
until then node lines are parsed with the GPU health check's parser, the one in the tree.

Only jobs the controller held itself are ever released (it keeps their ids); a job a user or an administrator held
stays held. Every command has a hard timeout.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bitten.gpu.slurm import NodeState, parse_nodes

#: squeue's reason for a job held by an operator or administrator (scontrol hold)
HELD_REASONS = frozenset({"JobHeldAdmin", "JobHeldUser"})


class SlurmError(RuntimeError):
    pass


@dataclass(frozen=True)
class PendingJob:
    job_id: str
    reason: str

    @property
    def held(self) -> bool:
        return self.reason in HELD_REASONS


class Slurm(Protocol):
    def nodes(self) -> dict[str, NodeState]: ...

    def pending(self, qos: str) -> list[PendingJob]: ...

    def hold(self, job_ids: Sequence[str]) -> None: ...

    def release(self, job_ids: Sequence[str]) -> None: ...


class Scontrol:
    def __init__(self, scontrol: Sequence[str] = ("scontrol",), squeue: Sequence[str] = ("squeue",),
                 timeout: float = 20.0) -> None:
        self.scontrol = list(scontrol)
        self.squeue = list(squeue)
        self.timeout = timeout

    def _run(self, argv: list[str]) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SlurmError(f"{' '.join(argv)}: {exc}") from None
        if done.returncode != 0:
            raise SlurmError(f"{' '.join(argv)}: exit {done.returncode}: {(done.stderr or done.stdout).strip()[:300]}")
        return done.stdout

    def nodes(self) -> dict[str, NodeState]:
        return parse_nodes(self._run([*self.scontrol, "show", "node", "-o"]))

    def pending(self, qos: str) -> list[PendingJob]:
        out = self._run([*self.squeue, "--noheader", "--states=PENDING", f"--qos={qos}", "--format=%i|%r"])
        jobs = []
        for line in out.splitlines():
            job_id, sep, reason = line.strip().partition("|")
            if sep and job_id:
                jobs.append(PendingJob(job_id, reason))
        return jobs

    def hold(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            self._run([*self.scontrol, "hold", ",".join(job_ids)])

    def release(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            self._run([*self.scontrol, "release", ",".join(job_ids)])


@dataclass
class MemorySlurm:
    """An in-memory cluster for tests: node states and pending jobs per QoS."""

    node_states: dict[str, NodeState] = field(default_factory=dict)
    jobs: dict[str, dict[str, str]] = field(default_factory=dict)  # qos -> job id -> reason
    calls: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    fail: set[str] = field(default_factory=set)

    def nodes(self) -> dict[str, NodeState]:
        if "nodes" in self.fail:
            raise SlurmError("scontrol show node: timed out")
        return dict(self.node_states)

    def pending(self, qos: str) -> list[PendingJob]:
        if "pending" in self.fail:
            raise SlurmError("squeue: exit 1")
        return [PendingJob(j, r) for j, r in sorted(self.jobs.get(qos, {}).items())]

    def hold(self, job_ids: Sequence[str]) -> None:
        self.calls.append(("hold", tuple(job_ids)))
        if "hold" in self.fail:
            raise SlurmError("scontrol hold: exit 1")
        for jobs in self.jobs.values():
            for j in job_ids:
                if j in jobs:
                    jobs[j] = "JobHeldAdmin"

    def release(self, job_ids: Sequence[str]) -> None:
        self.calls.append(("release", tuple(job_ids)))
        if "release" in self.fail:
            raise SlurmError("scontrol release: exit 1")
        for jobs in self.jobs.values():
            for j in job_ids:
                if j in jobs:
                    jobs[j] = "Priority"
