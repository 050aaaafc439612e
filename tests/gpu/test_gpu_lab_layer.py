from __future__ import annotations

import importlib

from bitten.lab import lab, layers
from bitten.lab.layers.gpu import gpu_checks, rows


def test_layer_registers_its_summary() -> None:
    assert "bitten.lab.layers.gpu" in layers.LAYERS
    importlib.import_module("bitten.lab.layers.gpu")
    assert gpu_checks in lab.SUMMARIES


def test_rows_say_which_checks_ran() -> None:
    report = {"node": "lab-gpu01", "healthy": True, "reason": None, "checks": [
        {"name": "devices", "status": "ok", "findings": [], "detail": "2 device files"},
        {"name": "driver", "status": "skip", "findings": [], "detail": "no NVIDIA driver in this container"},
        {"name": "xid", "status": "ok", "findings": [], "detail": "no XIDs"}]}
    assert rows("lab-gpu01", report) == [
        ("lab-gpu01", "devices", "ok", "2 device files"),
        ("lab-gpu01", "driver", "skip", "no NVIDIA driver in this container"),
        ("lab-gpu01", "xid", "ok", "no XIDs"),
        ("lab-gpu01", "verdict", "ok", "healthy"),
    ]
    failed = {"healthy": False, "reason": "gpu-health: x", "checks": [
        {"name": "count", "status": "fail", "findings": ["1 of 2 GPUs missing"], "detail": ""}]}
    assert rows("n", failed)[0] == ("n", "count", "fail", "1 of 2 GPUs missing")
    assert rows("n", failed)[-1] == ("n", "verdict", "fail", "unhealthy: gpu-health: x")
