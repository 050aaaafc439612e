from __future__ import annotations

import time

import pytest

from bitten.core import process as run_module
from bitten.core.process import run


@pytest.fixture(autouse=True)
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_module, "GRACE_SECONDS", 0.3)


def test_success_and_exit_code() -> None:
    ok = run(["sh", "-c", "echo out; echo err >&2; exit 3"], 5)
    assert (ok.returncode, ok.stdout, ok.stderr, ok.timed_out) == (3, "out\n", "err\n", False)


def test_missing_command() -> None:
    result = run(["/nonexistent/nvidia-smi", "-L"], 5)
    assert result.missing and result.returncode is None and "No such file" in result.stderr


def test_hung_command_is_killed_in_time() -> None:
    start = time.monotonic()
    result = run(["sleep", "30"], 0.5)
    assert result.timed_out and result.returncode is None
    assert time.monotonic() - start < 0.5 + 0.3 + 1


def test_grandchild_holding_the_pipe_does_not_hang_the_caller() -> None:
    # the grandchild leaves the process group (setsid), so killing the group cannot end it, and it keeps stdout
    start = time.monotonic()
    result = run(["sh", "-c", "setsid sleep 30 & sleep 30"], 0.5)
    assert result.timed_out
    assert time.monotonic() - start < 0.5 + 0.3 + 1
