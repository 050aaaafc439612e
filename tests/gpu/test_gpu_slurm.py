from __future__ import annotations

import pytest

from bitten.gpu.slurm import REASON_PREFIX, Action, NodeState, decide, parse_node, reason_text, scontrol_argv

IDLE = ("NodeName=gpu01 Arch=x86_64 CoresPerSocket=2 CPUAlloc=0 CPUEfctv=2 CPUTot=2 CPULoad=0.10 "
        "AvailableFeatures=b200 ActiveFeatures=b200 Gres=gpu:b200:2 NodeAddr=gpu01 NodeHostName=gpu01 "
        "Version=24.11.5 OS=Linux 6.1.0 RealMemory=512 AllocMem=0 FreeMem=400 Sockets=1 Boards=1 State=IDLE "
        "ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A Partitions=gpu "
        "BootTime=2025-06-12T10:00:00 SlurmdStartTime=2025-06-12T10:01:00 LastBusyTime=2025-06-12T10:01:00 "
        "ResumeAfterTime=None CfgTRES=cpu=2,mem=512M,billing=2,gres/gpu=2 AllocTRES= CurrentWatts=0 AveWatts=0")


def drained(reason: str) -> str:
    return IDLE.replace("State=IDLE", "State=IDLE+DRAIN") + f" Reason={reason} [root@2025-06-12T10:05:00]"


def test_parse_idle_node() -> None:
    node = parse_node(IDLE, "gpu01")
    assert node.state == "IDLE" and node.reason is None and not node.drained


def test_parse_drained_with_reason_containing_spaces_and_colons() -> None:
    reason = "gpu-health: XID 79 on 0000:43:00: GPU has fallen off the bus"
    node = parse_node(drained(reason), "gpu01")
    assert node.drained and node.ours
    assert node.reason == reason
    assert node.reason_user == "root"


def test_parse_wrong_node_is_an_error() -> None:
    with pytest.raises(ValueError, match="NodeName=gpu02"):
        parse_node(IDLE, "gpu02")


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
])
def test_decide(state: str, reason: str | None, finding: str | None, action: Action) -> None:
    assert decide(NodeState("gpu01", state, reason), finding) is action


def test_reason_text_is_prefixed_safe_and_bounded() -> None:
    text = reason_text(["a=1 \"quoted\"", "second"])
    assert text == f"{REASON_PREFIX} a:1 'quoted'; second"
    assert len(reason_text(["x" * 500])) == 200


def test_scontrol_commands() -> None:
    assert scontrol_argv(Action.DRAIN, "gpu01", "gpu-health: x") == [
        "scontrol", "update", "NodeName=gpu01", "State=DRAIN", "Reason=gpu-health: x"]
    assert scontrol_argv(Action.RESUME, "gpu01", None) == ["scontrol", "update", "NodeName=gpu01", "State=RESUME"]
    assert scontrol_argv(Action.LEAVE, "gpu01", "gpu-health: x") is None
