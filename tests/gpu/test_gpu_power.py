"""bitten-gpu-power against the nvidia-smi TEST DOUBLE: it sets each GPU's limit and reports what the GPUs accepted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bitten.gpu import power

SMI = str(Path(__file__).resolve().parents[1] / "doubles" / "nvidia-smi")


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NVIDIA_SMI_DOUBLE_DIR", str(tmp_path))
    (tmp_path / "power.json").write_text(json.dumps({"count": 2, "min_w": 200, "max_w": 1000, "limits": {}}))
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    code = power.main(["--nvidia-smi", SMI, *args])
    return code, json.loads(capsys.readouterr().out)


def test_sets_and_reads_back(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run(capsys, "--watts", "700")
    assert code == 0 and doc["accepted"] is True
    assert [(g["index"], g["limit_w"]) for g in doc["gpus"]] == [(0, 700.0), (1, 700.0)]  # type: ignore[union-attr]
    assert json.loads((state / "power.json").read_text())["limits"] == {"0": 700.0, "1": 700.0}
    code, doc = run(capsys, "--read")
    assert code == 0 and doc["gpus"][0]["limit_w"] == 700.0  # type: ignore[index]


def test_outside_the_range_is_refused_and_reported(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run(capsys, "--watts", "150")
    assert code == 1 and doc["accepted"] is False
    assert "outside the GPU's range [200, 1000] W" in doc["gpus"][0]["error"]  # type: ignore[index]
    assert doc["gpus"][0]["limit_w"] == 1000.0  # type: ignore[index]  # what the GPU reports: unchanged


def test_a_gpu_that_does_not_take_the_limit(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (state / "exit").write_text("9")
    code, doc = run(capsys, "--watts", "700")
    assert code == 3 and "exit 9" in str(doc["error"])
    assert power.main(["--nvidia-smi", SMI, "--watts", "99999"]) == 2


def test_the_installed_nvidia_smi_cannot_be_overridden(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = power.main(["--nvidia-smi", SMI, "--watts", "700", "--nvidia-smi", "/tmp/evil"])
    assert code == 2 and "refused" in capsys.readouterr().out
    assert power.main(["--nvidia-smi", SMI, "--nvidia-smi=/tmp/evil", "--read"]) == 2
