"""The health check end to end against the nvidia-smi test double (real processes, fixture output)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from gpu_fixtures import DOUBLES, FIXTURES

from bitten.core import process as run_module
from bitten.core.process import Result
from bitten.gpu import check
from bitten.gpu.drain import Action
from bitten.gpu.health import Expectation, Policy, Status


def _state(tmp: Path, query: str, listing: str, topo: str, kernel: str | None = None) -> Path:
    state = tmp / "double"
    state.mkdir(exist_ok=True)
    for src, dest in ((query, "query.xml"), (listing, "list.txt"), (topo, "topo.txt")):
        shutil.copy(FIXTURES / src, state / dest)
    (state / "kernel.log").write_text((FIXTURES / kernel).read_text() if kernel else "")
    return state


@pytest.fixture
def double(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = _state(tmp_path, "smi-q-b200x8.xml", "smi-L-b200x8.txt", "topo-b200x8.txt")
    monkeypatch.setenv("NVIDIA_SMI_DOUBLE_DIR", str(state))
    return state


def _config(tmp: Path, **overrides: object) -> check.Config:
    values: dict[str, object] = {
        "expect": Expectation(count=8, slurm_type="b200", model="NVIDIA B200 SXM", architecture="blackwell",
                              nvswitch=True),
        "nvidia_smi": str(DOUBLES / "nvidia-smi"),
        "kernel_log_command": (str(DOUBLES / "kernel-log"),),
        "state_dir": str(tmp / "state"),
        "command_timeout": 5.0,
        "deadline": 20.0,
    }
    values.update(overrides)
    return check.Config(**values)  # type: ignore[arg-type]


def _by_name(verdict: object) -> dict[str, object]:
    return {c.name: c for c in verdict.checks}  # type: ignore[attr-defined]


def test_healthy_board(double: Path, tmp_path: Path) -> None:
    verdict = check.evaluate(_config(tmp_path))
    checks = _by_name(verdict)
    assert verdict.healthy, verdict.findings
    assert {name: c.status for name, c in checks.items()} == {  # type: ignore[attr-defined]
        "devices": Status.OK, "driver": Status.OK, "count": Status.OK, "model": Status.OK, "ecc": Status.OK,
        "reset": Status.OK, "persistence": Status.OK, "fabric": Status.OK, "nvlink": Status.OK, "xid": Status.OK}
    assert checks["driver"].detail == "driver 580.82.07"  # type: ignore[attr-defined]


def test_faulty_board_names_each_problem(double: Path, tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "smi-q-b200x8-faulty.xml", double / "query.xml")
    shutil.copy(FIXTURES / "topo-b200x8-gpu6-nvlink-down.txt", double / "topo.txt")
    verdict = check.evaluate(_config(tmp_path))
    assert not verdict.healthy
    assert verdict.findings == [
        "GPU3 (0000:61:00): 2 uncorrectable ECC errors since driver load",
        "GPU3 (0000:61:00): row remap pending (reset the GPU)",
        "GPU3 (0000:61:00): 2 uncorrectable ECC errors over its lifetime",
        "GPU3 (0000:61:00): driver reports a reset is required",
        "GPU5 (0000:c3:00): fabric In Progress (no status)",
        "GPU6 has no NVLink to the other GPUs",
    ]


def test_lost_gpu_and_xid(double: Path, tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "smi-q-b200x7-lost.xml", double / "query.xml")
    shutil.copy(FIXTURES / "journal-k-xid.txt", double / "kernel.log")
    verdict = check.evaluate(_config(tmp_path, expect=Expectation(count=8, slurm_type="b200")))
    assert verdict.findings == [
        "1 of 8 GPUs missing (nvidia-smi sees 7)",
        "XID 79 on 0000:d1:00: GPU has fallen off the bus",
        "XID 154 on 0000:d1:00: GPU recovery action changed",
    ]


def test_acknowledged_xids_are_ignored(double: Path, tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "journal-k-xid.txt", double / "kernel.log")
    config = _config(tmp_path)
    assert not check.evaluate(config).healthy
    state = tmp_path / "state"
    state.mkdir()
    (state / "xid-ack").write_text("1749725961.0\n")
    assert check.evaluate(config).healthy


def test_driver_not_loaded(double: Path, tmp_path: Path) -> None:
    (double / "exit").write_text("9\n")
    verdict = check.evaluate(_config(tmp_path))
    assert verdict.findings == ["nvidia-smi failed: the NVIDIA driver is not loaded (exit 9)"]
    # in a container the userspace tools install but no driver can load: skipped, not a drain
    verdict = check.evaluate(_config(tmp_path, container=True))
    assert verdict.healthy
    assert _by_name(verdict)["driver"].status is Status.SKIP  # type: ignore[attr-defined]


def test_hung_gpu_is_a_finding_not_a_hang(double: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_module, "GRACE_SECONDS", 0.3)
    (double / "hang").touch()
    verdict = check.evaluate(_config(tmp_path, command_timeout=2.0, deadline=10.0))
    assert verdict.findings == ["nvidia-smi hung (no answer within 2 s)"]


def test_missing_driver_in_a_container_is_skipped(tmp_path: Path) -> None:
    config = _config(tmp_path, nvidia_smi=str(tmp_path / "absent"), container=True)
    verdict = check.evaluate(config)
    assert verdict.healthy
    assert _by_name(verdict)["driver"].status is Status.SKIP  # type: ignore[attr-defined]
    config = _config(tmp_path, nvidia_smi=str(tmp_path / "absent"))
    assert check.evaluate(config).findings == [f"nvidia-smi not found ({tmp_path / 'absent'})"]


def test_cpu_node_has_nothing_to_check(tmp_path: Path) -> None:
    verdict = check.evaluate(_config(tmp_path, expect=Expectation(count=0)))
    assert verdict.healthy and [c.name for c in verdict.checks] == ["gpus"]


class Scontrol:
    """Records scontrol calls and answers `show node` with the node's state, which drain and resume change
    (unit-test stand-in; ``obey=False``: Slurm accepts the update but the node stays as it was)."""

    def __init__(self, state: str, reason: str | None = None, obey: bool = True) -> None:
        self.state, self.reason, self.obey = state, reason, obey
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> Result:
        self.calls.append(list(argv))
        if argv[1] == "show":
            line = f"NodeName=gpu01 Arch=x86_64 State={self.state} ThreadsPerCore=1"
            if self.reason:
                line += f" Reason={self.reason} [root@2025-06-12T10:05:00]"
            return Result(tuple(argv), 0, line + "\n", "")
        if self.obey and "State=DRAIN" in argv:
            self.state, self.reason = self.state.split("+")[0] + "+DRAIN", argv[-1].removeprefix("Reason=")
        elif self.obey and "State=RESUME" in argv:
            self.state = self.state.split("+")[0]
        return Result(tuple(argv), 0, "", "")


def test_act_drains_then_resumes(double: Path, tmp_path: Path) -> None:
    config = _config(tmp_path)
    shutil.copy(FIXTURES / "smi-q-b200x7-lost.xml", double / "query.xml")
    bad = check.evaluate(config)
    scontrol = Scontrol("IDLE")
    outcome = check.act("gpu01", bad, config, scontrol)
    assert outcome.action is Action.DRAIN
    assert scontrol.calls[1] == ["scontrol", "update", "NodeName=gpu01", "State=DRAIN",
                                 "Reason=gpu-health: 1 of 8 GPUs missing (nvidia-smi sees 7)"]
    # what Slurm shows afterwards is what the outcome reports
    assert scontrol.calls[2][:3] == ["scontrol", "show", "node"]
    assert (outcome.state_before, outcome.state_after, outcome.error) == ("IDLE", "IDLE+DRAIN", None)
    good = check.evaluate(_config(tmp_path, expect=Expectation(count=7, slurm_type="b200", nvswitch=True)))
    scontrol = Scontrol("IDLE+DRAIN", outcome.reason)
    resumed = check.act("gpu01", good, config, scontrol)
    assert resumed.action is Action.RESUME
    assert scontrol.calls[1] == ["scontrol", "update", "NodeName=gpu01", "State=RESUME"]
    assert (resumed.state_after, resumed.error) == ("IDLE", None)


def test_act_reports_a_drain_slurm_did_not_make(double: Path, tmp_path: Path) -> None:
    config = _config(tmp_path)
    shutil.copy(FIXTURES / "smi-q-b200x7-lost.xml", double / "query.xml")
    outcome = check.act("gpu01", check.evaluate(config), config, Scontrol("IDLE", obey=False))
    assert outcome.action is Action.DRAIN and outcome.state_after == "IDLE"
    assert outcome.error == "asked Slurm to drain gpu01, but it shows State=IDLE"


def test_main_report_json_and_config_files(double: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    node = tmp_path / "gpu-node.json"
    node.write_text(json.dumps({"host": "gpu01", "gpu": {"count": 8, "slurm_type": "b200", "nvswitch": True}}))
    conf = tmp_path / "gpu-health.json"
    conf.write_text(json.dumps({"nvidia_smi": str(DOUBLES / "nvidia-smi"), "state_dir": str(tmp_path / "s"),
                                "kernel_log_command": [str(DOUBLES / "kernel-log")]}))
    code = check.main(["--mode", "report", "--node", "gpu01", "--node-file", str(node), "--config", str(conf),
                       "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["healthy"] is True and result["action"] == "none"
    assert [c["name"] for c in result["checks"]][:3] == ["devices", "driver", "count"]


def test_main_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main(["--node-file", str(tmp_path / "nope.json")]) == 2
    assert "bad configuration" in capsys.readouterr().err


def test_policy_min_nvlinks_without_nvswitch(double: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, expect=Expectation(count=8, slurm_type="b200"), policy=Policy(min_nvlinks=24))
    assert check.evaluate(config).findings == ["28 GPU pairs on fewer than 24 NVLinks (e.g. GPU0-GPU1 on NV18)"]
