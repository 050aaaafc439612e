"""Draining and resuming a Slurm node for GPU health, without overriding what an administrator decided.

The health check owns only drains whose reason starts with its prefix ("gpu-health:"). It resumes a node only
when the node is drained for such a reason, and it never rewrites a drain an administrator (or another check)
set: that node stays as it is and the problem is only reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

REASON_PREFIX = "gpu-health:"
#: Slurm keeps reasons short in sinfo; scontrol accepts more, but a reason is a label, not a log
MAX_REASON = 200
_REASON_STAMPED = re.compile(r"\bReason=(?P<reason>.*?) \[(?P<who>[^\]@]+)@(?P<when>[^\]]+)\]")
_REASON_BARE = re.compile(r"\bReason=(?P<reason>.*?)(?=\s+\w+=|$)")
_STATE = re.compile(r"\bState=(?P<state>\S+)")
_NAME = re.compile(r"^\s*NodeName=(?P<name>\S+)")


@dataclass(frozen=True)
class NodeState:
    name: str
    #: base state and flags as scontrol prints them, e.g. IDLE+DRAIN
    state: str
    reason: str | None = None
    reason_user: str | None = None

    @property
    def flags(self) -> set[str]:
        return set(self.state.upper().replace("*", "").split("+"))

    @property
    def drained(self) -> bool:
        """Drained or draining (DRAIN flag), or DOWN: both keep jobs away."""
        return bool({"DRAIN", "DRAINED", "DRAINING", "DOWN"} & self.flags)

    @property
    def ours(self) -> bool:
        return bool(self.reason and self.reason.startswith(REASON_PREFIX))


def parse_node(text: str, name: str) -> NodeState:
    """Parse ``scontrol show node -o NAME`` (one line of Key=Value pairs; Reason may contain spaces)."""
    line = next((raw for raw in text.splitlines() if f"NodeName={name} " in raw or raw.endswith(f"NodeName={name}")),
                None)
    if line is None:
        raise ValueError(f"scontrol printed no NodeName={name} line")
    state = _STATE.search(line)
    if state is None:
        raise ValueError(f"no State= for node {name} in scontrol output")
    stamped = _REASON_STAMPED.search(line)
    bare = stamped or _REASON_BARE.search(line)
    reason = bare["reason"].strip() if bare else None
    if reason in ("None", "(null)"):
        reason = None
    return NodeState(name=name, state=state["state"], reason=reason or None,
                     reason_user=stamped["who"] if stamped else None)


def parse_nodes(text: str) -> dict[str, NodeState]:
    """Every node of ``scontrol show node -o`` (one node per line); lines without NodeName= or State= are skipped."""
    nodes: dict[str, NodeState] = {}
    for line in text.splitlines():
        name = _NAME.match(line)
        if name is None:
            continue
        try:
            nodes[name["name"]] = parse_node(line, name["name"])
        except ValueError:
            continue
    return nodes


class Action(Enum):
    NONE = "none"
    DRAIN = "drain"
    UPDATE_REASON = "update-reason"
    RESUME = "resume"
    #: unhealthy, but drained for another reason: leave it, report only
    LEAVE = "leave"


def decide(node: NodeState, reason: str | None) -> Action:
    """What to do with ``node`` given the check's result (``reason`` is None when the GPUs are healthy)."""
    if reason is None:
        return Action.RESUME if node.drained and node.ours else Action.NONE
    if not node.drained:
        return Action.DRAIN
    if not node.ours:
        return Action.LEAVE
    return Action.NONE if node.reason == reason else Action.UPDATE_REASON


def reason_text(findings: list[str]) -> str:
    """One drain reason from the findings, most important first, cut to MAX_REASON characters."""
    text = f"{REASON_PREFIX} " + "; ".join(findings)
    # scontrol output is Key=Value: a reason without "=" reads back unambiguously
    text = text.replace('"', "'").replace("\n", " ").replace("=", ":")
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def scontrol_argv(action: Action, node: str, reason: str | None) -> list[str] | None:
    if action in (Action.DRAIN, Action.UPDATE_REASON):
        return ["scontrol", "update", f"NodeName={node}", "State=DRAIN", f"Reason={reason}"]
    if action is Action.RESUME:
        return ["scontrol", "update", f"NodeName={node}", "State=RESUME"]
    return None
