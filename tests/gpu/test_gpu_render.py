"""The files bitten renders for GPU health: what each node's check expects, and slurm.conf's hooks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bitten.capabilities import load_site, render_file
from bitten.site import Site

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lab() -> Site:
    return load_site([ROOT / "inventory" / "lab"])


def test_gpu_node_file_follows_the_profile(lab: Site) -> None:
    gpu = json.loads(render_file(lab, "/etc/bitten/gpu-node.json", "lab-gpu01"))
    assert gpu["hardware_profile"] == "lab_gpu"
    assert gpu["gpu"] == {"count": 2, "slurm_type": "b200", "model": "NVIDIA B200 SXM (stand-in)",
                          "architecture": "blackwell", "nvswitch": True, "memory_gb": 180, "max_power_watts": 1000,
                          "devices": ["/dev/nvidia0", "/dev/nvidia1"]}
    cpu = json.loads(render_file(lab, "/etc/bitten/gpu-node.json", "lab-cpu01"))
    assert cpu["gpu"] is None


def test_only_compute_nodes_get_it(lab: Site) -> None:
    with pytest.raises(KeyError, match="does not get"):
        render_file(lab, "/etc/bitten/gpu-node.json", "lab-ctl")


def test_slurm_conf_runs_the_check_and_the_prolog(lab: Site) -> None:
    conf = render_file(lab, "/etc/slurm/slurm.conf", "lab-ctl").splitlines()
    assert "HealthCheckProgram=/usr/local/sbin/bitten-gpu-health" in conf
    assert "HealthCheckInterval=300" in conf
    assert "HealthCheckNodeState=ANY" in conf
    assert "Prolog=/usr/local/sbin/bitten-gpu-prolog" in conf
