"""Which NVLink software each GPU generation needs, and the health check reading NVLSM's and Fabric Manager's state."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from gpu_fixtures import DOUBLES, FIXTURES

from bitten.gpu import check
from bitten.gpu.health import Expectation, Status
from bitten.gpu.nvlink import STACKS, packages, stack_for

ROOT = Path(__file__).resolve().parents[2]


def test_fourth_generation_nvswitch_needs_nvlsm_and_the_rest_fabric_manager_only() -> None:
    assert stack_for("blackwell", nvswitch=True) == STACKS["blackwell"]
    assert STACKS["blackwell"].nvswitch_generation == 4 and STACKS["blackwell"].nvlsm
    for arch in ("volta", "ampere", "hopper"):
        stack = stack_for(arch, nvswitch=True)
        assert stack is not None and stack.fabric_manager and not stack.nvlsm
    assert stack_for("blackwell", nvswitch=False) is None  # a PCIe B200 has no NVSwitch
    assert stack_for("ada", nvswitch=True) is None


@pytest.mark.parametrize(("arch", "branch", "expected"), [
    ("blackwell", 580, {"fabric_manager": ["nvidia-fabricmanager", "libnvidia-nscq"], "nvlsm": ["libnvsdm", "nvlsm"],
                        "debian": ["infiniband-diags"]}),
    ("blackwell", 570, {"fabric_manager": ["nvidia-fabricmanager-570", "libnvidia-nscq-570"],
                        "nvlsm": ["libnvsdm-570", "nvlsm"], "debian": ["infiniband-diags"]}),
    ("hopper", 580, {"fabric_manager": ["nvidia-fabricmanager", "libnvidia-nscq"], "nvlsm": [], "debian": []}),
])
def test_package_names_follow_the_driver_branch(arch: str, branch: int, expected: dict[str, list[str]]) -> None:
    assert packages(arch, True, branch) == expected


def test_the_gpu_readme_table_matches_the_code() -> None:
    readme = (ROOT / "roles/gpu/README.md").read_text()
    for arch, stack in STACKS.items():
        row = next(line for line in readme.splitlines() if line.startswith(f"| {arch} "))
        assert f"| {stack.nvswitch_generation} |" in row and ("NVLSM" in row) == stack.nvlsm, row


def test_process_running_reads_proc(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    (proc / "41").mkdir(parents=True)
    (proc / "41/comm").write_text("nv-fabricmanage\n")
    assert not check.process_running("nvlsm", str(proc))
    (proc / "42").mkdir()
    (proc / "42/comm").write_text("nvlsm\n")
    assert check.process_running("nvlsm", str(proc))


@pytest.fixture
def double(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import shutil

    state = tmp_path / "double"
    state.mkdir()
    for src, dest in (("smi-q-b200x8.xml", "query.xml"), ("smi-L-b200x8.txt", "list.txt"),
                      ("topo-b200x8.txt", "topo.txt")):
        shutil.copy(FIXTURES / src, state / dest)
    (state / "kernel.log").write_text("")
    monkeypatch.setenv("NVIDIA_SMI_DOUBLE_DIR", str(state))
    return state


def _config(tmp: Path, nvlsm_process: str | None) -> check.Config:
    return check.Config(expect=Expectation(count=8, slurm_type="b200", model="NVIDIA B200 SXM",
                                           architecture="blackwell", nvswitch=True),
                        nvidia_smi=str(DOUBLES / "nvidia-smi"), kernel_log_command=(str(DOUBLES / "kernel-log"),),
                        state_dir=str(tmp / "state"), command_timeout=5.0, deadline=20.0,
                        nvlsm_process=nvlsm_process)


def test_the_health_check_fails_the_fabric_when_nvlsm_is_not_running(double: Path, tmp_path: Path) -> None:
    verdict = check.evaluate(_config(tmp_path, "bitten-no-such-nvlsm"))
    fabric = next(c for c in verdict.checks if c.name == "fabric")
    assert fabric.status is Status.FAIL
    assert fabric.findings == ("NVLink Subnet Manager (nvlsm) is not running",)
    assert "nvlsm" in verdict.findings[0]


def test_the_health_check_passes_with_nvlsm_running(double: Path, tmp_path: Path) -> None:
    # a real process with the command name the check looks for
    name = "bitten-nvlsm-t"
    proc = subprocess.Popen([sys.executable, "-c", f"import ctypes, time; ctypes.CDLL(None).prctl(15, b'{name}'); "
                             "time.sleep(30)"])
    try:
        for _ in range(50):
            if check.process_running(name):
                break
            time.sleep(0.05)
        verdict = check.evaluate(_config(tmp_path, name))
        assert next(c for c in verdict.checks if c.name == "fabric").status is Status.OK, verdict.findings
    finally:
        proc.kill()
        proc.wait()
