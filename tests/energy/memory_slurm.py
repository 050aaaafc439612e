"""An in-memory Slurm for the energy tests (a TEST DOUBLE): node states and pending jobs per QoS, hold and release."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bitten.core.scontrol import NodeState
from bitten.energy.slurm import PendingJob, SlurmError


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
