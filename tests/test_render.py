"""bitten render: deterministic trees, the expected Slurm config, and the same bytes the roles deploy."""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bitten.capabilities import FILES, load_site, render_file, render_tree
from bitten.cli import app

from conftest import INVENTORIES, ROOT

runner = CliRunner()


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def bitten_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("render") / "bitten"
    result = runner.invoke(app, ["render", str(INVENTORIES / "bitten"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_render_twice_gives_identical_trees(bitten_tree: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    result = runner.invoke(app, ["render", str(INVENTORIES / "bitten"), "--out", str(again)])
    assert result.exit_code == 0
    assert tree(bitten_tree) == tree(again)
    # a re-render into the same directory replaces it whole: a stale file does not survive
    (again / "stale.txt").write_text("old")
    runner.invoke(app, ["render", str(INVENTORIES / "bitten"), "--out", str(again)])
    assert not (again / "stale.txt").exists()


def test_every_host_gets_the_cluster_files(bitten_tree: Path) -> None:
    site = load_site(INVENTORIES / "bitten")
    assert sorted(p.name for p in bitten_tree.iterdir() if p.is_dir()) == sorted(site.nodes)
    manifest = (bitten_tree / "manifest.tsv").read_text().splitlines()
    assert len(manifest) == 1 + sum(len(spec.hosts(site)) * len(list(spec.paths(site))) for spec in FILES)
    assert any(line.startswith("gpu01\t/etc/slurm/slurm.conf\t0644\troot:root\t") for line in manifest)
    assert any(line.startswith("ctl01\t/etc/bitten/cooling/agent.yaml\t0640\troot:bitten-cooling\t")
               for line in manifest)
    for host in site.nodes:
        for path in ("etc/hosts", "etc/slurm/slurm.conf", "etc/slurm/gres.conf", "etc/slurm/cgroup.conf"):
            assert (bitten_tree / host / path).is_file(), (host, path)
    assert filecmp.cmp(bitten_tree / "gpu01/etc/slurm/slurm.conf", bitten_tree / "ctl01/etc/slurm/slurm.conf",
                       shallow=False)


def test_slurm_conf_describes_the_site(bitten_tree: Path) -> None:
    conf = (bitten_tree / "gpu07/etc/slurm/slurm.conf").read_text()
    lines = conf.splitlines()
    gpu_nodes = [line for line in lines if line.startswith("NodeName=gpu[01-16] ")]
    assert len(gpu_nodes) == 1
    assert "Gres=gpu:b200:8" in gpu_nodes[0]
    assert "CPUs=128 Sockets=2 CoresPerSocket=64" in gpu_nodes[0]
    assert any(line.startswith("NodeName=cpu[01-32] ") and "Gres=" not in line for line in lines)
    gpu_part = next(line for line in lines if line.startswith("PartitionName=gpu "))
    cpu_part = next(line for line in lines if line.startswith("PartitionName=cpu "))
    assert "Nodes=gpu[01-16]" in gpu_part and "AllowQos=gpu,ucloud-b200" in gpu_part
    assert 'TRESBillingWeights="GRES/gpu=1.0"' in gpu_part
    assert "Nodes=cpu[01-32]" in cpu_part and "Default=YES" in cpu_part
    for setting in ("AccountingStorageType=accounting_storage/slurmdbd", "PriorityType=priority/multifactor",
                    "PriorityDecayHalfLife=0", "PriorityUsageResetPeriod=NONE",
                    "AccountingStorageEnforce=associations,limits,qos,safe", "SlurmctldHost=ctl01"):
        assert setting in lines
    assert any(line.startswith("AccountingStorageTRES=gres/gpu") for line in lines)
    gres = (bitten_tree / "gpu07/etc/slurm/gres.conf").read_text()
    assert "NodeName=gpu[01-16] Name=gpu Type=b200 File=/dev/nvidia[0-7]" in gres


def test_hosts_file_lists_every_host(bitten_tree: Path) -> None:
    hosts = (bitten_tree / "login01/etc/hosts").read_text()
    assert "10.20.1.16\tgpu16.bitten.sdu.dk\tgpu16\n" in hosts
    assert hosts.count("bitten.sdu.dk") == 51


def test_rendered_output_holds_no_secret_values(bitten_tree: Path) -> None:
    for content in tree(bitten_tree).values():
        assert b"PRIVATE KEY" not in content


def test_lookup_in_a_play_gives_the_same_bytes(tmp_path: Path) -> None:
    """What a role deploys through lookup('bitten_file') is byte for byte what `bitten render` writes."""
    site = load_site(INVENTORIES / "lab")
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK": "json",
           "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.json"}
    playbook = tmp_path / "lookup.yml"
    playbook.write_text(
        "- hosts: lab-gpu01\n  gather_facts: false\n  connection: local\n  tasks:\n"
        "    - ansible.builtin.set_fact:\n"
        "        files: {hosts: \"{{ lookup('bitten_file', '/etc/hosts') }}\",\n"
        "                slurm: \"{{ lookup('bitten_file', '/etc/slurm/slurm.conf') }}\"}\n")
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(INVENTORIES / "lab"),
                           str(playbook)], capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    facts = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["lab-gpu01"]["ansible_facts"]["files"]
    assert facts["hosts"] == render_file(site, "/etc/hosts", "lab-gpu01")
    assert facts["slurm"] == render_file(site, "/etc/slurm/slurm.conf", "lab-gpu01")


def test_render_tree_shares_cluster_wide_content(tmp_path: Path) -> None:
    site = load_site(INVENTORIES / "bitten")
    result = render_tree(site, tmp_path / "out")
    assert result.hosts == 51
    # one content per file and item when it is cluster-wide, one per host when it is per host
    assert result.unique == sum((len(spec.hosts(site)) if spec.per_host else min(1, len(spec.hosts(site))))
                                * len(list(spec.paths(site))) for spec in FILES)
    assert (tmp_path / "out/gpu01/etc/hosts").stat().st_nlink == 51
