"""TEST DOUBLE of Slurm's node states: an in-memory cluster with slurmctld's drain/resume semantics, for unit tests
and the bench (bench/cooling.py). The real path is bitten.core.scontrol.Scontrol against slurmctld, run by the
cooling_agent and gpu nvidia-repo Molecule scenarios. It implements bitten.core.scontrol.Nodes, and the jobs on a
set of nodes the cooling agent requeues or cancels on a leak (bitten.cooling.nodes.Slurm)."""

from __future__ import annotations

from collections.abc import Sequence

from bitten.core.scontrol import NodeState


class MemorySlurm:
    """Nodes start IDLE. drain sets the DRAIN flag and the reason on the base state; resume clears both (a DOWN node
    stays DOWN); each returns the states afterwards, as Scontrol reads them back. ``calls`` records every change."""

    def __init__(self, nodes: Sequence[str]) -> None:
        self.nodes = {n: NodeState(n, "IDLE") for n in nodes}
        self.calls: list[tuple[str, tuple[str, ...], str]] = []
        #: running jobs: job id -> the nodes it runs on
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
            self.jobs.pop(j, None)  # pending again, running nowhere
        return []

    def cancel(self, jobs: Sequence[str], nodes: Sequence[str]) -> list[str]:
        self.calls.append(("cancel", tuple(jobs), ""))
        for j in jobs:
            self.jobs.pop(j, None)
        return []
