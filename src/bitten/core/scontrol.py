"""The one Slurm module for whatever acts on nodes: node states as ``scontrol show node -o`` prints them, drain
reasons (one sanitiser, one way to own a reason by its prefix), and scontrol itself under a hard time limit.

Standard library only: the GPU health check carries this module to compute nodes (bitten.gpu.NODE_MODULES), where
the project's venv is not installed.

Two words for two questions, because callers need different ones:

- ``drained``: the DRAIN flag is set (Slurm prints IDLE+DRAIN, MIXED+DRAIN, DOWN+DRAIN, ...): no new jobs until
  someone resumes the node. This is what ``drain()`` sets and what keeps a node out after it comes back.
- ``unavailable``: drained, or DOWN: the node takes no new jobs right now. A DOWN node that is not drained returns
  to service by itself when its slurmd answers again (ReturnToService), so whoever must keep jobs off a node (the
  cooling agent after a leak) drains it even when it is down.

Every change is read back: ``drain``, ``resume`` and ``update`` return the node states Slurm shows afterwards, so
the caller reports what Slurm did, not what it asked for.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from bitten.core.process import Result, run

#: Slurm keeps reasons short in sinfo; scontrol accepts more, but a reason is a label, not a log
MAX_REASON = 200
DRAIN_FLAGS = frozenset({"DRAIN", "DRAINED", "DRAINING"})
#: what scontrol prints when a node has no reason
NO_REASON = frozenset({"", "None", "(null)"})
#: a reason that contains these would not parse back from ``scontrol show node -o`` (Key=Value pairs)
_UNSAFE = re.compile(r"[=\"\r\n\t]")

_REASON_STAMPED = re.compile(r"\bReason=(?P<reason>.*?) \[(?P<who>[^\]@]+)@(?P<when>[^\]]+)\]")
_REASON_BARE = re.compile(r"\bReason=(?P<reason>.*?)(?=\s+\w+=|$)")
_STATE = re.compile(r"\bState=(?P<state>\S+)")
_NAME = re.compile(r"^\s*NodeName=(?P<name>\S+)")


@dataclass(frozen=True)
class NodeState:
    """One node as ``scontrol show node -o`` shows it."""

    name: str
    #: base state and flags as scontrol prints them, e.g. IDLE, IDLE+DRAIN, DOWN+DRAIN+NOT_RESPONDING
    state: str
    reason: str | None = None
    #: who set the reason, and when (scontrol's "[user@time]" after it)
    reason_user: str | None = None
    reason_time: str | None = None

    @property
    def flags(self) -> frozenset[str]:
        """Base state and flags, upper case, without sinfo's suffix marks (``*`` not responding, ``~`` powered
        down, ...)."""
        return frozenset(part.rstrip("*~#!%$@^-") for part in self.state.upper().split("+"))

    @property
    def base(self) -> str:
        """The base state: IDLE, MIXED, ALLOCATED, DOWN, ..."""
        return self.state.upper().split("+")[0].rstrip("*~#!%$@^-")

    @property
    def drained(self) -> bool:
        """The DRAIN flag is set (drained or draining): no new jobs until the node is resumed."""
        return bool(DRAIN_FLAGS & self.flags)

    @property
    def down(self) -> bool:
        return "DOWN" in self.flags

    @property
    def unavailable(self) -> bool:
        """Drained or down: the node takes no new jobs now (a down node may come back by itself)."""
        return self.drained or self.down


def sanitise_reason(text: str, limit: int = MAX_REASON) -> str:
    """A reason scontrol stores and ``show node -o`` prints back unchanged: no '=', no double quote, one line, at
    most ``limit`` characters (cut with "...")."""
    text = text.replace('"', "'").replace("=", ":")
    text = re.sub(r"[\r\n\t]+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class ReasonPrefix:
    """A program's claim on the drains it sets: every reason it writes starts with ``prefix``, and it resumes only
    nodes whose reason does. A drain anyone else set (an administrator, another check) is never its to undo."""

    prefix: str

    def reason(self, text: str) -> str:
        return sanitise_reason(f"{self.prefix} {text}")

    def owns(self, node: NodeState) -> bool:
        return bool(node.reason and node.reason.startswith(self.prefix))


def parse_node(text: str, name: str) -> NodeState:
    """Parse ``scontrol show node -o NAME`` (one line of Key=Value pairs; Reason may contain spaces)."""
    line = next((raw for raw in text.splitlines() if f"NodeName={name} " in raw or raw.endswith(f"NodeName={name}")),
                None)
    if line is None:
        raise ValueError(f"scontrol printed no NodeName={name} line")
    return _parse_line(line, name)


def _parse_line(line: str, name: str) -> NodeState:
    state = _STATE.search(line)
    if state is None:
        raise ValueError(f"no State= for node {name} in scontrol output")
    stamped = _REASON_STAMPED.search(line)
    bare = stamped or _REASON_BARE.search(line)
    reason = bare["reason"].strip() if bare else None
    return NodeState(name=name, state=state["state"], reason=None if reason in NO_REASON else reason,
                     reason_user=stamped["who"] if stamped else None,
                     reason_time=stamped["when"] if stamped else None)


def parse_nodes(text: str) -> dict[str, NodeState]:
    """Every node of ``scontrol show node -o`` (one node per line); lines without NodeName= or State= are skipped."""
    nodes: dict[str, NodeState] = {}
    for line in text.splitlines():
        name = _NAME.match(line)
        if name is None:
            continue
        try:
            nodes[name["name"]] = _parse_line(line, name["name"])
        except ValueError:
            continue
    return nodes


class ScontrolError(RuntimeError):
    """scontrol failed, timed out or could not be run; nothing is known about what it did."""


class ReadBackError(ScontrolError):
    """scontrol accepted a change, but the node states could not be read back afterwards."""


#: runs argv with a time limit (seconds); bitten.core.process.run, or a stand-in in tests
Runner = Callable[[Sequence[str], float], Result]


class Nodes(Protocol):
    """What a program that drains and resumes nodes needs from Slurm (Scontrol; in tests an in-memory TEST DOUBLE,
    bitten.lab.doubles.slurm.MemorySlurm). drain and resume return the states read back afterwards."""

    def node_states(self, nodes: Sequence[str]) -> dict[str, NodeState]: ...

    def drain(self, nodes: Sequence[str], reason: str) -> dict[str, NodeState]: ...

    def resume(self, nodes: Sequence[str]) -> dict[str, NodeState]: ...


class Scontrol:
    """Slurm through scontrol on a host with slurm.conf and munge. Every call runs under ``timeout`` seconds in its
    own process group, killed as a whole when the limit passes (scontrol waits for slurmctld without a limit of its
    own when the controller hangs)."""

    def __init__(self, argv: Sequence[str] = ("scontrol",), timeout: float = 20.0, runner: Runner = run) -> None:
        self.argv = list(argv)
        self.timeout = timeout
        self.runner = runner

    def run(self, *args: str) -> str:
        """scontrol ARGS; its stdout, or ScontrolError with what went wrong."""
        argv = [*self.argv, *args]
        what = " ".join(["scontrol", *args])
        result = self.runner(argv, self.timeout)
        if result.missing:
            raise ScontrolError(f"{what}: cannot run {argv[0]}: {result.stderr.strip()}")
        if result.timed_out:
            raise ScontrolError(f"{what}: no answer within {self.timeout:g} s (killed)")
        if result.returncode != 0:
            raise ScontrolError(f"{what}: exit {result.returncode}: {result.stderr.strip() or result.stdout.strip()}")
        return result.stdout

    def node_states(self, nodes: Sequence[str]) -> dict[str, NodeState]:
        """The named nodes as Slurm shows them now (nodes Slurm does not print are missing from the result)."""
        if not nodes:
            return {}
        shown = parse_nodes(self.run("show", "node", "-o", _hostlist(nodes)))
        return {name: shown[name] for name in nodes if name in shown}

    def update(self, nodes: Sequence[str], fields: Mapping[str, str]) -> dict[str, NodeState]:
        """``scontrol update NodeName=... KEY=VALUE ...``, then the nodes' states read back."""
        if not nodes:
            return {}
        self.run("update", f"NodeName={_hostlist(nodes)}", *(f"{key}={value}" for key, value in fields.items()))
        try:
            return self.node_states(nodes)
        except ScontrolError as exc:
            raise ReadBackError(f"scontrol update of {_hostlist(nodes)} succeeded, but reading the nodes back "
                                f"failed: {exc}") from exc

    def drain(self, nodes: Sequence[str], reason: str) -> dict[str, NodeState]:
        """Drain ``nodes`` with ``reason`` (sanitised already: see sanitise_reason); the states afterwards."""
        if _UNSAFE.search(reason) or not reason.strip():
            raise ScontrolError(f"a drain reason must not contain '=', '\"' or a line break, nor be empty (it would "
                                f"not parse back): {reason!r}")
        return self.update(nodes, {"State": "DRAIN", "Reason": reason})

    def resume(self, nodes: Sequence[str]) -> dict[str, NodeState]:
        """Resume ``nodes`` (clears DRAIN; a down node stays down until its slurmd answers); the states after."""
        return self.update(nodes, {"State": "RESUME"})


def _hostlist(nodes: Sequence[str]) -> str:
    # a comma-separated list is a hostlist expression to scontrol; folding it (gpu[01-16]) needs python-hostlist,
    # which compute nodes do not have
    return ",".join(nodes)
