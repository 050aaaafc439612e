"""When the GPU health check drains or resumes its node, without overriding what an administrator decided.

The health check owns only drains whose reason starts with its prefix ("gpu-health:"). It resumes a node only
when the node is drained for such a reason, and it never rewrites a drain an administrator (or another check)
set: that node stays as it is and the problem is only reported. A node that is down (not responding) is left
alone too: it is unavailable already, and the check drains it on its next run once slurmd answers again.
Node states, reasons and scontrol itself are bitten.core.scontrol's.
"""

from __future__ import annotations

from enum import Enum

from bitten.core.scontrol import NodeState, ReasonPrefix

REASON = ReasonPrefix("gpu-health:")
REASON_PREFIX = REASON.prefix


class Action(Enum):
    NONE = "none"
    DRAIN = "drain"
    UPDATE_REASON = "update-reason"
    RESUME = "resume"
    #: unhealthy, but drained (or down) for another reason: leave it, report only
    LEAVE = "leave"


def decide(node: NodeState, reason: str | None) -> Action:
    """What to do with ``node`` given the check's result (``reason`` is None when the GPUs are healthy)."""
    if reason is None:
        return Action.RESUME if node.unavailable and REASON.owns(node) else Action.NONE
    if not node.unavailable:
        return Action.DRAIN
    if not REASON.owns(node):
        return Action.LEAVE
    return Action.NONE if node.reason == reason else Action.UPDATE_REASON


def reason_text(findings: list[str]) -> str:
    """One drain reason from the findings, most important first (bounded and safe: core.scontrol.sanitise_reason)."""
    return REASON.reason("; ".join(findings))
