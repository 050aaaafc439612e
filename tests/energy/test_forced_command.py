"""The GPU node's forced command for the controller's SSH key: bitten-gpu-power --watts N or --read, nothing else."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "roles" / "energy_controller" / "files" / "bitten-gpu-power-ssh"


@pytest.fixture
def fake_sudo(tmp_path: Path) -> Path:
    sudo = tmp_path / "sudo"
    sudo.write_text('#!/bin/sh\nprintf \'{"ran": "%s"}\\n\' "$*"\n')
    sudo.chmod(0o755)
    return tmp_path


def run(original: str, bindir: Path) -> tuple[int, dict[str, str]]:
    done = subprocess.run(["/bin/sh", str(SCRIPT)], capture_output=True, text=True,
                          env={"SSH_ORIGINAL_COMMAND": original, "PATH": f"{bindir}:/usr/bin:/bin"})
    return done.returncode, json.loads(done.stdout)


@pytest.mark.parametrize("original, ran", [
    ("sudo -n /usr/local/sbin/bitten-gpu-power --watts 700", "-n /usr/local/sbin/bitten-gpu-power --watts 700"),
    ("/usr/local/sbin/bitten-gpu-power --watts 1000", "-n /usr/local/sbin/bitten-gpu-power --watts 1000"),
    ("sudo -n /usr/local/sbin/bitten-gpu-power --read", "-n /usr/local/sbin/bitten-gpu-power --read"),
])
def test_allowed(original: str, ran: str, fake_sudo: Path) -> None:
    assert run(original, fake_sudo) == (0, {"ran": ran})


@pytest.mark.parametrize("original", [
    "cat /etc/shadow", "sudo -n /usr/local/sbin/bitten-gpu-power --watts 700; id",
    "sudo -n /usr/local/sbin/bitten-gpu-power --watts 7e2", "sudo -n /usr/local/sbin/bitten-gpu-power --watts",
    "sudo -n /usr/local/sbin/bitten-gpu-power --watts 700 --nvidia-smi /tmp/x", "",
    "sudo -n /usr/local/sbin/bitten-gpu-power --read --nvidia-smi /tmp/x",
])
def test_refused(original: str, fake_sudo: Path) -> None:
    code, doc = run(original, fake_sudo)
    assert code == 2 and "refused" in doc["error"] and "ran" not in doc
