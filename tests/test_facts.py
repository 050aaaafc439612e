"""The values roles read from the site model (lookup bitten_facts): derived once, the same as the model says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bitten.capabilities import CAPABILITIES, facts, facts_for, load_site
from bitten.site import Site

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lab() -> Site:
    return load_site(ROOT / "inventory" / "lab")


def test_every_capability_says_which_of_its_files_a_host_gets(lab: Site) -> None:
    found = facts(lab, "lab-dbd")
    assert set(found) == {cap.name for cap in CAPABILITIES}
    assert found["slurm"]["files"] == ["/etc/slurm/slurm.conf", "/etc/slurm/gres.conf", "/etc/slurm/cgroup.conf",
                                       "/etc/slurm/slurmdbd.conf"]
    assert found["ucloud"]["files"] == []
    assert "/etc/nftables.d/ucloud-im.nft" in facts(lab, "lab-login")["ucloud"]["files"]


def test_slurm_parts_and_database_come_from_the_model(lab: Site) -> None:
    by_host = facts_for(lab, sorted(lab.nodes), ["slurm"])
    parts = {host: [k for k in ("controller", "dbd", "compute", "client") if f["slurm"][k]]
             for host, f in by_host.items()}
    assert parts == {"lab-ctl": ["controller"], "lab-dbd": ["dbd"], "lab-login": ["client"],
                     "lab-gpu01": ["compute"], "lab-gpu02": ["compute"], "lab-cpu01": ["compute"],
                     "lab-vm01": ["compute"]}  # the bare node, provisioned over PXE
    slurm = by_host["lab-ctl"]["slurm"]
    assert slurm["accounting_host"] == "lab-dbd"
    assert slurm["database"] == {"host": "localhost", "port": 3306, "name": "slurm_acct_db", "user": "slurm",
                                 "local": True}


def test_cooling_agent_hosts_and_its_scontrol(lab: Site) -> None:
    cooling = facts(lab, "lab-ctl", ["cooling"])["cooling"]
    assert cooling["agent"] and cooling["agent_hosts"] == ["lab-ctl"]
    assert cooling["scontrol"][0] != "sudo"  # reading node states needs no privilege
    assert cooling["helper"][:2] == ["sudo", "-n"] and cooling["helper"][-2:] == ["-m", "bitten.cooling.helper"]
    assert not facts(lab, "lab-gpu01", ["cooling"])["cooling"]["agent"]


def test_unknown_names_are_refused(lab: Site) -> None:
    with pytest.raises(KeyError, match="no capability named slrum"):
        facts(lab, "lab-ctl", ["slrum"])
    with pytest.raises(KeyError, match="nosuchhost"):
        facts(lab, "nosuchhost")


def test_the_lookup_gives_a_play_the_same_values(tmp_path: Path) -> None:
    play = tmp_path / "play.yml"
    play.write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.set_fact:\n"
        "        by_host: \"{{ lookup('bitten_facts', 'slurm', 'base', hosts=ansible_play_hosts_all) }}\"\n"
        "        mine: \"{{ lookup('bitten_facts', 'gpu') }}\"\n"
        "      run_once: true\n"
        "    - ansible.builtin.copy:\n"
        "        content: \"{{ {'by_host': by_host, 'mine': mine} | to_json }}\"\n"
        f"        dest: {tmp_path}/out.json\n"
        "      delegate_to: localhost\n      run_once: true\n")
    bindir = Path(sys.executable).parent
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    proc = subprocess.run([str(bindir / "ansible-playbook"), "-i", str(ROOT / "inventory" / "lab"), str(play),
                           "-e", f"ansible_connection=local ansible_python_interpreter={sys.executable}"],
                          capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads((tmp_path / "out.json").read_text())
    site = load_site(ROOT / "inventory" / "lab")
    assert out["by_host"] == json.loads(json.dumps(facts_for(site, sorted(site.nodes), ["slurm", "base"])))
    # run_once runs on the first host of the play, in inventory order
    assert out["mine"] == json.loads(json.dumps(facts(site, "lab-ctl", ["gpu"])["gpu"]))
