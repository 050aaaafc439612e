"""When the GPU health check drains, resumes or leaves its node (node states and scontrol: tests/core)."""

from __future__ import annotations

import pytest

from bitten.core.scontrol import NodeState
from bitten.gpu.drain import REASON_PREFIX, Action, decide, reason_text


@pytest.mark.parametrize(("state", "reason", "finding", "action"), [
    ("IDLE", None, None, Action.NONE),
    ("IDLE", None, "gpu-health: x", Action.DRAIN),
    ("MIXED", None, "gpu-health: x", Action.DRAIN),
    ("IDLE+DRAIN", "gpu-health: x", "gpu-health: x", Action.NONE),
    ("IDLE+DRAIN", "gpu-health: x", "gpu-health: y", Action.UPDATE_REASON),
    ("IDLE+DRAIN", "gpu-health: x", None, Action.RESUME),
    ("DOWN+DRAIN", "gpu-health: x", None, Action.RESUME),
    # an administrator's drain is never touched, healthy or not
    ("IDLE+DRAIN", "replace fan 3", None, Action.NONE),
    ("IDLE+DRAIN", "replace fan 3", "gpu-health: x", Action.LEAVE),
    ("DOWN", "Not responding", None, Action.NONE),
    # down is unavailable already: the check drains it on a later run, once slurmd answers and it is up again
    ("DOWN", "Not responding", "gpu-health: x", Action.LEAVE),
])
def test_decide(state: str, reason: str | None, finding: str | None, action: Action) -> None:
    assert decide(NodeState("gpu01", state, reason), finding) is action


def test_reason_text_is_prefixed_safe_and_bounded() -> None:
    text = reason_text(["a=1 \"quoted\"", "second"])
    assert text == f"{REASON_PREFIX} a:1 'quoted'; second"
    assert len(reason_text(["x" * 500])) == 200
