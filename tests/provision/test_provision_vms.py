"""The PXE path for real: QEMU virtual machines powered on through Redfish boot the image bitten built.

A lab of its own (tests/provision/pxe, network bitten-pxe): a provisioner container converged by the provisioner
role, sushy-tools' libvirt driver as the VMs' BMC, and the real playbooks (provision, hardware, boot, base, Slurm).
The provisioner container is also the Slurm controller (slurmctld, slurmdbd and MariaDB, converged by the slurm
role): on the same bridge as the VMs, it costs no further container. Two stateless nodes and one image-to-disk
deploy boot together; then the faults: a node whose NIC never comes up (it never asks for DHCP) and a VM whose MAC
no node of the inventory has. Each node's boot is asserted from what the provisioner recorded (its lease, the image
id it reported, where its root is) and from its BMC, and from Slurm: `sinfo` shows it idle and a job ran on it; a
second run changes nothing.

Needs root, podman, libvirt/QEMU and the base image (make test has them); takes several minutes (marked vm).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from bitten.capabilities import load_site
from bitten.lab import podman as pm
from bitten.lab import vms
from bitten.lab.image import Recipe
from bitten.lab.lab import Lab
from bitten.lab.layers.provision import slurm_on
from bitten.provision.boot import http_status
from bitten.provision.nodes import boot_nodes, http_base

from conftest import ROOT

HERE = Path(__file__).resolve().parent
PLAYBOOK = HERE / "pxe" / "boot.yml"
STRANGER_MAC = "52:54:00:79:00:99"

pytestmark = [
    pytest.mark.vm,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("virsh") is None or shutil.which("podman") is None
                       or not pm.image_exists(Recipe("trixie").stable_ref),
                       reason="needs root, libvirt and podman with the base image (make test installs them)"),
]


@pytest.fixture(scope="module")
def pxe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    os.environ.setdefault("CONTAINERS_CONF", str(ROOT / "lab" / "containers.conf"))
    os.environ.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    root = tmp_path_factory.mktemp("pxe")
    shutil.copytree(HERE / "pxe" / "inventory", root / "pxe" / "inventory")
    inventory = root / "pxe" / "inventory"
    lab = Lab(inventory, load_site(inventory), Console(width=160))
    lab.down()  # anything a previous run of this test left
    try:
        lab.up(playbook=None)
        yield lab
    finally:
        print(f"VM consoles: {sorted(str(p) for p in (lab.state / 'vms').glob('*.console'))}")
        lab.down()


def _record(lab: Lab) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((lab.state / "provision" / "boot.json").read_text())
    return data


def _status(lab: Lab) -> dict[str, Any]:
    return dict(http_status(f"{http_base(lab.site)}/status")())


@pytest.fixture(scope="module")
def booted(pxe: Lab) -> dict[str, Any]:
    """Two stateless nodes and a disk deploy, powered on through Redfish at once (the faulty node held back)."""
    recap = pxe.run_playbook(PLAYBOOK, ["--limit", "all:!pxe-vm09"])
    assert recap.returncode == 0, "the playbooks failed; see the output above"
    return _record(pxe)


@pytest.mark.parametrize("host", ["pxe-vm01", "pxe-vm02"])
def test_stateless_nodes_boot_the_image_from_their_reservation(pxe: Lab, booted: dict[str, Any], host: str) -> None:
    node = boot_nodes(pxe.site)[host]
    boot = booted[host]
    assert boot["ok"], boot
    assert boot["lease_ip"] == str(node.ip)
    assert boot["image_id"] == node.image_id
    assert boot["deploy"] == "stateless" and boot["root"].startswith("rootfs")
    assert boot["seconds_to_up"] is not None and boot["seconds_to_lease"] < boot["seconds_to_up"]
    seen = _status(pxe)["nodes"][host]
    assert seen["reports"]["up"]["sender"] == str(node.ip)
    assert any(lease["mac"] == node.mac and lease["ip"] == str(node.ip) for lease in seen["leases"])


def test_a_disk_node_is_written_and_boots_from_its_disk(pxe: Lab, booted: dict[str, Any]) -> None:
    node = boot_nodes(pxe.site)["pxe-vm03"]
    boot = booted["pxe-vm03"]
    assert boot["ok"], boot
    assert boot["deploy"] == "disk" and boot["root"].startswith("/dev/vda2")
    assert boot["image_id"] == node.image_id and boot["lease_ip"] == str(node.ip)
    assert boot["steps"] == [f"image {node.image_id} written to /dev/vda", "boot target Hdd through the BMC; restarted"]
    assert boot["bmc"]["boot_target"] == "Hdd"
    assert "<boot order='1'/>" in vms.virsh("dumpxml", "pxe-vm03").stdout.split("<disk", 1)[1].split("</disk>")[0]


@pytest.mark.parametrize("host", ["pxe-vm01", "pxe-vm02", "pxe-vm03"])
def test_each_node_is_idle_in_slurm_and_runs_a_job(pxe: Lab, booted: dict[str, Any], host: str) -> None:
    """The slurm role waited until slurmctld had each node registered; sinfo (on pxe-ctl) shows it idle."""
    state, job = slurm_on(pxe, host)
    assert state == "idle", (state, job)
    assert job == f"ran on {host}"


def test_the_nodes_are_reachable_with_the_host_keys_bitten_recorded(pxe: Lab, booted: dict[str, Any]) -> None:
    """Strict host-key checking against the known_hosts the provisioner role wrote: the key in the overlay."""
    ansible = Path(sys.executable).parent / "ansible"
    proc = subprocess.run([str(ansible), "-i", str(pxe.inventory), "pxe-vm01:pxe-vm03", "-m", "command", "-a",
                           "cat /etc/bitten/image.json /etc/hostname"], capture_output=True, text=True, cwd=pxe.root,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert boot_nodes(pxe.site)["pxe-vm01"].image_id in proc.stdout
    assert "pxe-vm03\n" in proc.stdout


def test_a_second_run_changes_nothing(pxe: Lab, booted: dict[str, Any]) -> None:
    """The bare-metal layers again (provisioning, hardware, boot): nothing changes, no node is powered or booted
    again. (The base and Slurm roles' own idempotence is their Molecule scenarios'; on TCG virtual machines a second
    pass over them costs six minutes of CI.)"""
    recap = pxe.run_playbook(PLAYBOOK, ["--limit", "all:!pxe-vm09", "--tags", "provision,hardware,boot"])
    assert recap.returncode == 0
    assert recap.total_changed == 0, recap.changed


def test_a_bios_change_rolls_through_slurm_past_a_running_job(pxe: Lab, booted: dict[str, Any]) -> None:
    """`bitten hardware rollout` on a stateless node and the disk node, both profiles given a new BIOS value, while
    a job runs on pxe-vm01, one wave each: drained, restarted through the BMC (sushy-tools' libvirt driver), gated
    by a test job and resumed; the job on the other node runs on throughout. The stateless node comes back from PXE
    with its identity only, so bitten_rollout.converge (the test's playbooks, --limit it) gives it munge and Slurm
    back first; the disk node comes back from its disk as it was."""
    ctl = pxe.container_name("pxe-ctl")
    job = pm.exec_in(ctl, ["sbatch", "--parsable", "--nodelist=pxe-vm01", "--time=30", "--qos=normal",
                           "--chdir=/tmp", "--wrap", "sleep 1800"]).stdout.strip()
    site_yml = pxe.inventory / "group_vars" / "all" / "site.yml"
    kept = site_yml.read_text()
    try:
        _wait_job(ctl, job, "RUNNING")
        before = {host: _boot_id(pxe, host) for host in ("pxe-vm02", "pxe-vm03")}
        text = kept
        for marker in ("    model: virtual machine\n", "    model: virtual machine with a disk\n"):
            assert marker in text
            text = text.replace(marker, marker + "    bios: {ProcTurboMode: Disabled}\n")
        bindir = Path(sys.executable).parent
        converge = [str(bindir / "ansible-playbook"), "-i", str(pxe.inventory), str(PLAYBOOK)]
        marker = "  srun: [podman, exec, pxe-ctl, srun]\n"
        assert marker in text
        site_yml.write_text(text.replace(marker, marker + f"  converge: {json.dumps(converge)}\n"))
        env = {**os.environ, "BITTEN_BMC_USERNAME": (pxe.state / "bmc" / "username").read_text().strip(),
               "BITTEN_BMC_PASSWORD": (pxe.state / "bmc" / "password").read_text().strip()}
        rollout = [str(bindir / "bitten"), "hardware", "rollout", str(pxe.inventory), "--limit", "pxe-vm02,pxe-vm03",
                   "--ca", str(pxe.state / "ca" / "ca.pem")]
        dry = subprocess.run([*rollout, "--dry-run"], capture_output=True, text=True, env=env, check=False,
                             cwd=pxe.root)
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert "wave 1: pxe-vm02 (BIOS ProcTurboMode to write)\nwave 2: pxe-vm03 (BIOS ProcTurboMode to write)" \
            in dry.stdout, dry.stdout
        proc = subprocess.run([*rollout, "--json"], capture_output=True, text=True, env=env, check=False,
                              cwd=pxe.root)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        result = json.loads(proc.stdout)
        assert [(n["host"], n["wave"], n["state"]) for n in result["nodes"]] == [
            ("pxe-vm02", 1, "done"), ("pxe-vm03", 2, "done")], result
        assert "pxe-vm02: back from PXE with its identity only; converging" in proc.stderr, proc.stderr
        # each really rebooted and took work again; the job on pxe-vm01 never noticed
        for host in ("pxe-vm02", "pxe-vm03"):
            assert _boot_id(pxe, host) != before[host]
            assert slurm_on(pxe, host) == ("idle", f"ran on {host}")
        assert _job_state(ctl, job) == "RUNNING"
        again = subprocess.run([*rollout, "--dry-run"], capture_output=True, text=True, env=env, check=False,
                               cwd=pxe.root)
        assert again.returncode == 0 and "no node waits for a reboot" in again.stdout, again.stdout + again.stderr
    finally:
        site_yml.write_text(kept)
        pm.exec_in(ctl, ["scancel", job], check=False)


def _job_state(ctl: str, job: str) -> str:
    return str(pm.exec_in(ctl, ["squeue", "-h", "-j", job, "-o", "%T"], check=False).stdout.strip())


def _wait_job(ctl: str, job: str, state: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while (seen := _job_state(ctl, job)) != state:
        assert time.monotonic() < deadline, f"job {job} is {seen or 'gone'}, not {state}, after {timeout:.0f} s"
        time.sleep(2)


def _boot_id(lab: Lab, host: str) -> str:
    ansible = Path(sys.executable).parent / "ansible"
    proc = subprocess.run([str(ansible), "-i", str(lab.inventory), host, "-m", "command", "-a",
                           "cat /proc/sys/kernel/random/boot_id"], capture_output=True, text=True, cwd=lab.root,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def test_faults_a_node_that_never_asks_for_dhcp_and_an_unknown_mac(pxe: Lab, booted: dict[str, Any]) -> None:
    # at most three VMs at once on two cores: the booted ones make room (their records stand)
    for host in ("pxe-vm01", "pxe-vm02", "pxe-vm03"):
        vms.virsh("destroy", host, check=False)
    vms.virsh("domif-setlink", "pxe-vm09", "52:54:00:79:00:49", "down", "--config")
    stranger = vms.VmSpec(site=pxe.site.info.name, name="pxe-stranger", mac=STRANGER_MAC,
                          bridge=_bridge(pxe), memory_mb=512, uefi=False, disk=None,
                          console=pxe.state / "vms" / "pxe-stranger.console")
    vms.define(stranger)
    vms.virsh("start", "pxe-stranger")
    try:
        # the boot stages only: the node never boots, and pxe-ctl's Slurm stands as the first run left it
        recap = pxe.run_playbook(PLAYBOOK, ["--limit", "pxe-ctl:pxe-vm09", "--tags", "provision,hardware,boot"])
    finally:
        vms.virsh("destroy", "pxe-stranger", check=False)
    assert recap.returncode != 0 and recap.failed.get("pxe-vm09") == 1
    boot = _record(pxe)["pxe-vm09"]
    assert not boot["ok"]
    assert "never asked for DHCP within 90 s: no lease for 52:54:00:79:00:49" in boot["problem"]
    # its BMC's view: powered on through Redfish, no BootProgress from sushy-tools' libvirt driver
    assert boot["bmc"]["power"] == "On" and boot["bmc"]["boot_progress"] is None
    status = _status(pxe)
    assert STRANGER_MAC in status["unknown_macs"]
    assert status["unknown_macs"][STRANGER_MAC]["requests"] >= 1
    assert not status["nodes"]["pxe-vm09"]["leases"]
    # the others went on: their records stand
    assert all(_record(pxe)[h]["ok"] for h in ("pxe-vm01", "pxe-vm02", "pxe-vm03"))


def _bridge(lab: Lab) -> str:
    from bitten.lab.layers.provision import bridge

    return bridge(lab)
