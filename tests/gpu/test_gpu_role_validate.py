"""The gpu role refuses a driver branch that cannot drive the node's GPUs, before it installs anything.

Runs the role's validation (tasks_from: validate) with ansible-playbook against local connections: one host per
case, each a B200 node of a small site.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SITE = {
    "bitten_site": {"name": "validate", "domain": "validate.test"},
    "bitten_hardware_profile": "b200",
    "bitten_hardware_profiles": {"b200": {
        "model": "XD685", "cpu": {"model": "EPYC", "sockets": 2, "cores_per_socket": 64}, "memory_mb": 4096,
        "gpu": {"model": "NVIDIA B200 SXM", "slurm_type": "b200", "count": 8, "architecture": "blackwell",
                "memory_gb": 180, "nvswitch": True}}},
    "bitten_slurm": {"cluster_name": "validate"},
    "bitten_partitions": [{"name": "gpu", "groups": ["gpu_nodes"], "qos": ["normal"]}],
    "bitten_qos": [{"name": "normal"}],
    "gpu_slurm_nvml_plugin": False,
    "ansible_connection": "local",
    "ansible_python_interpreter": sys.executable,
}
CASES = {
    "debian550": {"bitten_ip": "10.0.0.1", "gpu_driver_branch": "550"},
    "closed580": {"bitten_ip": "10.0.0.2", "gpu_driver_kernel_modules": "proprietary"},
    "open580": {"bitten_ip": "10.0.0.3"},
    "version570": {"bitten_ip": "10.0.0.4", "gpu_driver_version": "565.57.01"},
}
PLAYBOOK = [{"name": "Validate", "hosts": "all", "gather_facts": False, "tasks": [
    {"name": "Validate", "ansible.builtin.include_role": {"name": "gpu", "tasks_from": "validate"}}]}]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    tmp = tmp_path_factory.mktemp("validate")
    inventory = {"all": {"vars": SITE, "children": {
        "slurm_controller": {"hosts": {"debian550": None}}, "slurm_dbd": {"hosts": {"debian550": None}},
        "gpu_nodes": {"hosts": CASES}}}}
    (tmp / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp / "play.yml").write_text(yaml.safe_dump(PLAYBOOK))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_ROLES_PATH=str(ROOT / "roles"),
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json",
               ANSIBLE_LOOKUP_PLUGINS=str(ROOT / "plugins/lookup"), ANSIBLE_FILTER_PLUGINS=str(ROOT / "plugins/filter"))
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp / "inventory.yml"),
                           str(tmp / "play.yml")], capture_output=True, text=True, env=env, check=False, cwd=ROOT)
    report = json.loads(proc.stdout)
    outcome: dict[str, dict[str, object]] = {host: {"failed": False, "msg": ""} for host in CASES}
    for task in report["plays"][0]["tasks"]:
        for host, result in task["hosts"].items():
            if result.get("failed"):
                outcome[host] = {"failed": True, "msg": result.get("msg", ""), "task": task["task"]["name"]}
    return outcome


def test_b200_refuses_an_old_branch(results: dict[str, dict[str, object]]) -> None:
    assert results["debian550"]["failed"]
    assert results["debian550"]["task"] == "gpu : Check that the driver branch supports the GPU generation"
    assert results["debian550"]["msg"] == (
        "debian550 (NVIDIA B200 SXM, profile b200): gpu_driver_branch 550 is too old for blackwell GPUs (e.g. B200): "
        "they need driver branch 570 or newer; set gpu_driver_branch to a supported branch (e.g. 580)")


def test_b200_refuses_proprietary_modules(results: dict[str, dict[str, object]]) -> None:
    assert results["closed580"]["failed"]
    assert "work only with the open kernel modules" in str(results["closed580"]["msg"])


def test_exact_version_is_validated_too(results: dict[str, dict[str, object]]) -> None:
    assert results["version570"]["failed"]
    assert "gpu_driver_version 565.57.01 is too old" in str(results["version570"]["msg"])


def test_supported_branch_passes(results: dict[str, dict[str, object]]) -> None:
    assert results["open580"] == {"failed": False, "msg": ""}
