"""bitten.core.scontrol: node states as scontrol prints them, drain reasons, and scontrol under a hard time limit
(against a scripted scontrol; the real one runs in the gpu nvidia-repo and cooling_agent Molecule scenarios)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bitten.core import process
from bitten.core.scontrol import (
    MAX_REASON,
    NodeState,
    ReadBackError,
    ReasonPrefix,
    Scontrol,
    ScontrolError,
    parse_node,
    parse_nodes,
    sanitise_reason,
)

IDLE = ("NodeName=gpu01 Arch=x86_64 CoresPerSocket=2 CPUAlloc=0 CPUEfctv=2 CPUTot=2 CPULoad=0.10 "
        "AvailableFeatures=b200 ActiveFeatures=b200 Gres=gpu:b200:2 NodeAddr=gpu01 NodeHostName=gpu01 "
        "Version=24.11.5 OS=Linux 6.1.0 RealMemory=512 AllocMem=0 FreeMem=400 Sockets=1 Boards=1 State=IDLE "
        "ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A Partitions=gpu "
        "BootTime=2025-06-12T10:00:00 SlurmdStartTime=2025-06-12T10:01:00 LastBusyTime=2025-06-12T10:01:00 "
        "ResumeAfterTime=None CfgTRES=cpu=2,mem=512M,billing=2,gres/gpu=2 AllocTRES= CurrentWatts=0 AveWatts=0")

SHOW_NODE = (
    "NodeName=gpu01 Arch=x86_64 CoresPerSocket=2 CPUAlloc=0 State=IDLE+DRAIN ThreadsPerCore=1 "
    "Partitions=gpu BootTime=2026-01-01T10:00:00 LastBusyTime=2026-01-01T10:00:00 "
    "Reason=bitten-cooling: leak on cdu-a (loop dlc-a): leak detected by Moisture [root@2026-01-01T10:05:00]\n"
    "NodeName=gpu02 Arch=x86_64 State=MIXED ThreadsPerCore=1 Reason=(null)\n"
    "NodeName=gpu03 State=DOWN+DRAIN+NOT_RESPONDING Reason=Not responding [slurm@2026-01-01T09:00:00] "
    "Comment=(null)\n"
    "NodeName=gpu04 State=DOWN+NOT_RESPONDING Reason=Not responding [slurm@2026-01-01T09:00:00]\n"
)
COOLING = ReasonPrefix("bitten-cooling:")


def drained(reason: str) -> str:
    return IDLE.replace("State=IDLE", "State=IDLE+DRAIN") + f" Reason={reason} [root@2025-06-12T10:05:00]"


# --- parsing -------------------------------------------------------------------------------------------------
def test_parse_idle_node() -> None:
    node = parse_node(IDLE, "gpu01")
    assert node.state == "IDLE" and node.reason is None and not node.drained


def test_parse_drained_with_reason_containing_spaces_and_colons() -> None:
    reason = "gpu-health: XID 79 on 0000:43:00: GPU has fallen off the bus"
    node = parse_node(drained(reason), "gpu01")
    assert node.drained and ReasonPrefix("gpu-health:").owns(node)
    assert node.reason == reason
    assert node.reason_user == "root" and node.reason_time == "2025-06-12T10:05:00"


def test_parse_wrong_node_is_an_error() -> None:
    with pytest.raises(ValueError, match="NodeName=gpu02"):
        parse_node(IDLE, "gpu02")


def test_parse_show_node() -> None:
    nodes = parse_nodes(SHOW_NODE)
    assert nodes["gpu01"].drained and COOLING.owns(nodes["gpu01"])
    assert nodes["gpu01"].reason == "bitten-cooling: leak on cdu-a (loop dlc-a): leak detected by Moisture"
    assert not nodes["gpu02"].drained and nodes["gpu02"].reason is None
    assert nodes["gpu03"].drained and not COOLING.owns(nodes["gpu03"]) and nodes["gpu03"].reason == "Not responding"


def test_lines_without_a_state_are_skipped() -> None:
    assert set(parse_nodes("NodeName=gpu01 Arch=x86_64\n" + SHOW_NODE)) == {"gpu02", "gpu03", "gpu04", "gpu01"}
    assert "gpu09" not in parse_nodes("NodeName=gpu09 Arch=x86_64\n")


# --- drained and unavailable: two questions, two words ------------------------------------------------------
@pytest.mark.parametrize(("state", "drained_", "down", "unavailable"), [
    ("IDLE", False, False, False),
    ("MIXED", False, False, False),
    ("IDLE+DRAIN", True, False, True),
    ("MIXED+DRAIN", True, False, True),  # draining: jobs still run, no new ones
    ("DOWN+DRAIN+NOT_RESPONDING", True, True, True),
    ("DOWN+NOT_RESPONDING", False, True, True),  # comes back by itself when slurmd answers
    ("DOWN", False, True, True),
    ("idle+drain", True, False, True),
])
def test_drained_and_unavailable(state: str, drained_: bool, down: bool, unavailable: bool) -> None:
    node = NodeState("gpu01", state)
    assert (node.drained, node.down, node.unavailable) == (drained_, down, unavailable)


# --- reasons ---------------------------------------------------------------------------------------------------
def test_one_sanitiser_makes_reasons_read_back_unchanged() -> None:
    text = sanitise_reason('a=1 "quoted"\nsecond\tline')
    assert text == "a:1 'quoted' second line"
    assert parse_node(drained(text), "gpu01").reason == text
    assert len(sanitise_reason("x" * 500)) == MAX_REASON and sanitise_reason("x" * 500).endswith("...")


def test_a_prefix_owns_only_its_own_reasons() -> None:
    reason = COOLING.reason("leak on cdu-a: Moisture=high")
    assert reason == "bitten-cooling: leak on cdu-a: Moisture:high"
    assert COOLING.owns(NodeState("gpu01", "IDLE+DRAIN", reason))
    assert not COOLING.owns(NodeState("gpu01", "IDLE+DRAIN", "gpu-health: 1 of 8 GPUs missing"))
    assert not COOLING.owns(NodeState("gpu01", "IDLE+DRAIN"))


# --- the runner ------------------------------------------------------------------------------------------------
def scripted(tmp_path: Path, body: str) -> tuple[Path, Path]:
    """A scontrol that logs its argv (one call per block) and runs ``body``; the node state is a file."""
    log = tmp_path / "argv"
    state = tmp_path / "state"
    state.write_text("IDLE")
    fake = tmp_path / "scontrol"
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" >> {log}\necho '---' >> {log}\n{body}\n")
    fake.chmod(0o755)
    return fake, log


SLURMCTLD = """\
case "$1 $3" in
  "show -o") for n in $(echo "$4" | tr , ' '); do printf 'NodeName=%s State=%s\\n' "$n" "$(cat {state})"; done ;;
  "update State=DRAIN") echo IDLE+DRAIN > {state} ;;
  "update State=RESUME") echo IDLE > {state} ;;
esac
"""


def test_drain_and_resume_read_back_what_slurm_did(tmp_path: Path) -> None:
    fake, log = scripted(tmp_path, SLURMCTLD.format(state=tmp_path / "state"))
    slurm = Scontrol([str(fake)])
    after = slurm.drain(["gpu01", "gpu02", "gpu03"], "bitten-cooling: leak on cdu-a")
    assert {n: s.state for n, s in after.items()} == {"gpu01": "IDLE+DRAIN", "gpu02": "IDLE+DRAIN",
                                                      "gpu03": "IDLE+DRAIN"}
    assert not slurm.resume(["gpu01"])["gpu01"].drained
    assert slurm.node_states(["gpu01"])["gpu01"].state == "IDLE"
    calls = [c.splitlines() for c in log.read_text().split("---\n") if c]
    assert calls[0] == ["update", "NodeName=gpu01,gpu02,gpu03", "State=DRAIN", "Reason=bitten-cooling: leak on cdu-a"]
    assert calls[1] == ["show", "node", "-o", "gpu01,gpu02,gpu03"]
    assert calls[2] == ["update", "NodeName=gpu01", "State=RESUME"]
    assert calls[3] == ["show", "node", "-o", "gpu01"]


def test_failures_say_what_failed(tmp_path: Path) -> None:
    fake, _log = scripted(tmp_path, "exit 0")
    with pytest.raises(ScontrolError, match="must not contain"):
        Scontrol([str(fake)]).drain(["gpu01"], "a=b")
    with pytest.raises(ScontrolError, match="exit 1"):
        Scontrol(["false"]).resume(["gpu01"])
    with pytest.raises(ScontrolError, match="cannot run"):
        Scontrol([str(tmp_path / "missing")]).resume(["gpu01"])
    # the update went through, the read-back did not: the caller must not report the change as done
    (tmp_path / "broken").mkdir()
    broken, _ = scripted(tmp_path / "broken", '[ "$1" = show ] && { echo "slurm_load_node error: Unable to contact '
                         'slurm controller" >&2; exit 1; }; exit 0')
    with pytest.raises(ReadBackError, match=r"reading the nodes back failed.*Unable to contact"):
        Scontrol([str(broken)]).drain(["gpu01"], "bitten-cooling: x")


def test_a_hung_scontrol_is_killed_with_its_children(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process, "GRACE_SECONDS", 0.3)
    marker = tmp_path / "child-alive"
    # scontrol waiting for a hung slurmctld, with a child holding the pipes open
    fake, _log = scripted(tmp_path, f"(sleep 3; touch {marker}) & sleep 30")
    start = time.monotonic()
    with pytest.raises(ScontrolError, match=r"no answer within 0\.5 s"):
        Scontrol([str(fake)], timeout=0.5).node_states(["gpu01"])
    assert time.monotonic() - start < 0.5 + 0.3 + 1
    time.sleep(3.5)
    assert not marker.exists(), "the process group was not killed"
