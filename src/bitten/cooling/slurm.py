"""The agent's view of Slurm: node states, drain and resume. A small interface, so the alarm logic is unit-tested
with an in-memory cluster and runs for real (``Scontrol``) against slurmctld in the Molecule scenario."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import hostlist

from bitten.gpu.slurm import parse_nodes

#: every reason the agent sets starts with this, and it only ever resumes nodes whose reason does
REASON_PREFIX = "bitten-cooling:"


class SlurmError(RuntimeError):
    pass


@dataclass(frozen=True)
class NodeState:
    name: str
    #: Slurm's state with flags, e.g. IDLE, IDLE+DRAIN, MIXED+DRAIN, DOWN+DRAIN+NOT_RESPONDING
    state: str
    reason: str = ""

    @property
    def drained(self) -> bool:
        return "DRAIN" in self.state.split("+")

    @property
    def ours(self) -> bool:
        return self.reason.startswith(REASON_PREFIX)


class Slurm(Protocol):
    def node_states(self, nodes: Sequence[str]) -> dict[str, NodeState]: ...

    def drain(self, nodes: Sequence[str], reason: str) -> None: ...

    def resume(self, nodes: Sequence[str]) -> None: ...


def parse_show_node(text: str) -> dict[str, NodeState]:
    """Parse `scontrol show node -o` (one node per line) with the GPU health check's parser."""
    return {name: NodeState(name, node.state, node.reason or "") for name, node in parse_nodes(text).items()}


class Scontrol:
    """Slurm through its command line on a host with slurm.conf and munge (the controller)."""

    def __init__(self, argv: Sequence[str] = ("scontrol",), timeout: float = 20.0) -> None:
        self.argv = list(argv)
        self.timeout = timeout

    def _run(self, *args: str) -> str:
        try:
            proc = subprocess.run([*self.argv, *args], capture_output=True, text=True, timeout=self.timeout,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SlurmError(f"scontrol {' '.join(args)}: {exc}") from exc
        if proc.returncode != 0:
            raise SlurmError(f"scontrol {' '.join(args)}: exit {proc.returncode}: {proc.stderr.strip()}")
        return proc.stdout

    def node_states(self, nodes: Sequence[str]) -> dict[str, NodeState]:
        if not nodes:
            return {}
        return parse_show_node(self._run("show", "node", "-o", hostlist.collect_hostlist(list(nodes))))

    def drain(self, nodes: Sequence[str], reason: str) -> None:
        if "=" in reason:
            raise SlurmError("a drain reason must not contain '=' (it would not parse back)")
        self._run("update", f"nodename={hostlist.collect_hostlist(list(nodes))}", "state=drain", f"reason={reason}")

    def resume(self, nodes: Sequence[str]) -> None:
        self._run("update", f"nodename={hostlist.collect_hostlist(list(nodes))}", "state=resume")


class MemorySlurm:
    """An in-memory cluster with Slurm's drain/resume semantics, for unit tests and the bench (a test double:
    the real path is Scontrol against slurmctld, exercised in the cooling_agent Molecule scenario)."""

    def __init__(self, nodes: Sequence[str]) -> None:
        self.nodes = {n: NodeState(n, "IDLE") for n in nodes}
        self.calls: list[tuple[str, tuple[str, ...], str]] = []

    def node_states(self, nodes: Sequence[str]) -> dict[str, NodeState]:
        return {n: self.nodes[n] for n in nodes if n in self.nodes}

    def drain(self, nodes: Sequence[str], reason: str) -> None:
        self.calls.append(("drain", tuple(nodes), reason))
        for n in nodes:
            base = self.nodes[n].state.split("+")[0]
            self.nodes[n] = NodeState(n, f"{base}+DRAIN", reason)

    def resume(self, nodes: Sequence[str]) -> None:
        self.calls.append(("resume", tuple(nodes), ""))
        for n in nodes:
            self.nodes[n] = NodeState(n, self.nodes[n].state.split("+")[0], "")
