"""Playbooks have a tag per layer and per component (README.md, "Tags"): --list-tags shows them, and a component
tag selects its own tasks plus what they need (the site model's facts, the checks), nothing else."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "playbooks" / "site.yml"

#: play name -> (its tags, the tags its tasks carry besides always)
EXPECTED = {
    "Provisioning - DHCP, TFTP, HTTP and images on the provisioner": ({"provision"}, {"provision"}),
    "Boot - provisioned nodes up with their image": ({"boot"}, {"boot"}),
    "Hardware - BMC state through Redfish": ({"hardware"}, {"hardware"}),
    "Base OS on every node": ({"base"}, {"base", "base:hosts", "base:time", "base:admins", "base:system"}),
    "Slurm cluster": ({"slurm"}, {"slurm", "slurm:munge", "slurm:config", "slurm:dbd", "slurm:controller",
                                  "slurm:accounting", "slurm:compute", "slurm:client"}),
    "GPU stack on GPU nodes": ({"gpu"}, {"gpu", "gpu:driver", "gpu:dcgm", "gpu:containers", "gpu:health"}),
    "GPU health check on the other compute nodes": ({"gpu", "gpu:health"}, {"gpu", "gpu:health"}),
    "The provider on UCloud/Core": ({"ucloud", "ucloud:provider"}, {"ucloud", "ucloud:provider"}),
    "Find the UCloud hosts in the site model": ({"ucloud", "ucloud:im", "ucloud:accounting"},
                                                {"ucloud", "ucloud:im", "ucloud:accounting"}),
    "The ucloud user on the Slurm hosts (slurmdbd maps its uid to the operator)": ({"ucloud", "ucloud:im"},
                                                                                   {"ucloud", "ucloud:im"}),
    "The UCloud Integration Module": ({"ucloud", "ucloud:im"}, {"ucloud", "ucloud:im"}),
    "Slurm accounting for UCloud (once, on the accounting host)": ({"ucloud", "ucloud:accounting"},
                                                                   {"ucloud", "ucloud:accounting"}),
    "Find the cooling agent's hosts": ({"cooling"}, {"cooling"}),
    "Cooling agent": ({"cooling"}, {"cooling"}),
    "InfiniBand fabric": ({"fabric"}, {"fabric"}),
    "Find the energy controller's hosts": ({"energy"}, {"energy"}),
    "Energy controller": ({"energy"}, {"energy"}),
    "The GPU nodes' side of the controller's caps": ({"energy"}, {"energy"}),
    "The login nodes' bitten-energy-jobs (each user's own jobs' figures, from the controller's statements)":
        ({"energy"}, {"energy"}),
}


def playbook(*args: str) -> str:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def tags(text: str) -> set[str]:
    return {t.strip() for t in text.split(",") if t.strip()}


@pytest.fixture(scope="module")
def listed() -> dict[str, tuple[set[str], set[str]]]:
    out = playbook("--list-tags", str(SITE))
    plays = re.findall(r"play #\d+ \([^)]*\): (.+?)\tTAGS: \[([^\]]*)\]\n\s+TASK TAGS: \[([^\]]*)\]", out)
    return {name: (tags(play), tags(task) - {"always"}) for name, play, task in plays}


def test_every_play_has_its_layer_and_component_tags(listed: dict[str, tuple[set[str], set[str]]]) -> None:
    assert listed == EXPECTED


def test_a_component_tag_selects_its_tasks_and_the_facts_they_need() -> None:
    out = playbook("--list-tasks", "--tags", "slurm:config", str(SITE))
    assert "slurm : Read the site model's Slurm facts" in out
    assert "slurm : Check this host has a Slurm part" in out
    assert "slurm : Write the config files" in out
    assert "slurm : Tell slurmctld and every slurmd to re-read the config" in out
    # beside the roles' argument checks (tagged always)
    chosen = [line for line in out.splitlines() if " : " in line and "Validating arguments" not in line]
    assert not [line for line in chosen if line.strip().startswith(("munge :", "base :", "gpu :"))]
    assert "Run the accounting daemon" not in out
    base = playbook("--list-tasks", "--tags", "base:time", str(SITE))
    assert "base : Point /etc/localtime at the time zone" in base and "base : Configure journald" not in base
