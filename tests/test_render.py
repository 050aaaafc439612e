"""bitten render: deterministic trees, the expected Slurm config, and the same bytes the roles deploy."""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bitten.capabilities import FILES, load_site, render_file, render_tree
from bitten.cli import app
from bitten.core.files import rendered
from bitten.provision.nodes import boot_nodes

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


def test_render_refuses_a_directory_that_is_not_a_render(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    result = runner.invoke(app, ["render", str(INVENTORIES / "bitten"), "--out", str(mine)])
    assert result.exit_code == 2
    assert "not an earlier `bitten render`" in result.stderr
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and (mine / "notes.txt").read_text() == "keep me"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert runner.invoke(app, ["render", str(INVENTORIES / "bitten"), "--out", str(empty)]).exit_code == 0


def test_every_host_gets_the_cluster_files(bitten_tree: Path) -> None:
    site = load_site(INVENTORIES / "bitten")
    manifest = (bitten_tree / "manifest.tsv").read_text().splitlines()
    # one line per path and distinct content, naming its hosts: a cluster-wide file is one line and one file
    hosts_of = {line.split("\t")[0]: line.split("\t")[1] for line in manifest[1:]}
    assert hosts_of["/etc/slurm/slurm.conf"] == "cpu[01-32],ctl01,dbd01,gpu[01-16],login01"
    assert any(line.startswith("/etc/slurm/slurm.conf\tcpu[01-32],ctl01,dbd01,gpu[01-16],login01\t0644\troot:root\t")
               for line in manifest)
    assert any(line.startswith("/etc/bitten/cooling/agent.yaml\tctl01\t0640\troot:bitten-cooling\t")
               for line in manifest)
    # per-host files only where they differ: gpu-node.json once per hardware profile, OpenSM's for the master and
    # the standby, the IPoIB address of every host on the fabric, each provisioned node's identity overlay; a file per
    # item (a boot script per provisioned node) is one path per item
    counts = Counter(line.split("\t")[0] for line in manifest[1:])
    booted = len(boot_nodes(site))
    assert counts == {path: {"/etc/bitten/gpu-node.json": 2, "/etc/opensm/opensm.conf": 2,
                             "/etc/default/opensm": 2,
                             "/etc/systemd/network/61-bitten-ipoib-pkey.network": 51,
                             "/etc/hostname": booted, "/etc/systemd/network/10-bitten.network": booted,
                             "/etc/bitten/node.json": booted}.get(path, 1)
                      for spec in FILES if spec.hosts(site) for path, _item in spec.paths(site)}
    # the reference site runs no container jobs: no plugstack.conf, enroot.conf, containers.json
    assert {spec.path for spec in FILES if not spec.hosts(site)} == {
        "/etc/slurm/plugstack.conf", "/etc/enroot/enroot.conf", "/etc/bitten/containers.json"}
    assert hosts_of["/etc/bitten/gpu-node.json"] in ("cpu[01-32]", "gpu[01-16]")
    for host in site.nodes:
        for path in ("/etc/hosts", "/etc/slurm/slurm.conf", "/etc/slurm/gres.conf", "/etc/slurm/cgroup.conf"):
            assert rendered(bitten_tree, host, path).is_file(), (host, path)
            assert rendered(bitten_tree, host, path) == bitten_tree / path.lstrip("/")
    assert filecmp.cmp(rendered(bitten_tree, "gpu01", "/etc/bitten/gpu-node.json"),
                       bitten_tree / "etc/bitten/gpu-node.json.by-host/gpu[01-16]", shallow=False)


def test_slurm_conf_describes_the_site(bitten_tree: Path) -> None:
    conf = rendered(bitten_tree, "gpu07", "/etc/slurm/slurm.conf").read_text()
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
    gres = rendered(bitten_tree, "gpu07", "/etc/slurm/gres.conf").read_text()
    assert "NodeName=gpu[01-16] Name=gpu Type=b200 File=/dev/nvidia[0-7]" in gres


def test_hosts_file_lists_every_host(bitten_tree: Path) -> None:
    hosts = rendered(bitten_tree, "login01", "/etc/hosts").read_text()
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
    # every file once (a file per item once per item), gpu-node.json once per profile (gpu, cpu), OpenSM's config for
    # the master and the standby, the IPoIB address once per host on the fabric, the identity overlay's hostname,
    # network and node.json once per provisioned node
    booted = len(boot_nodes(site))
    assert result.unique == sum(len(list(spec.paths(site))) for spec in FILES if spec.hosts(site)) + 1 + 2 + 50 \
        + 3 * (booted - 1)
    # written once, not once per host
    assert [p.name for p in (tmp_path / "out/etc").iterdir() if p.name == "hosts"] == ["hosts"]
    assert not (tmp_path / "out/gpu01").exists()


def test_accounting_appears_in_the_render(bitten_tree: Path) -> None:
    """QoS, limits and accounts are part of what an auditor reviews: a limit change is a one-line diff."""
    text = rendered(bitten_tree, "dbd01", "/etc/slurm/accounting.sacctmgr").read_text()
    assert "sacctmgr --immediate add qos gpu 'Description=interactive and batch GPU work outside UCloud' " \
           "Priority=10 MaxWall=2-00:00:00 MaxTRESPerUser=gres/gpu=32\n" in text
    assert "add account sdu Cluster=bitten Parent=root" in text and "DefaultQOS=normal" in text
    manifest = (bitten_tree / "manifest.tsv").read_text()
    assert "/etc/slurm/accounting.sacctmgr\tdbd01\treview\t-\t" in manifest
