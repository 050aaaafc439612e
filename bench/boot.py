"""Bench: Redfish power-on to "node up" for one virtual node, then for N at once, as a ratio to the one-node time.

A lab of bare nodes of its own (tests/provision/pxe, network bitten-pxe): the provisioner role serves the image
(built once per recipe hash, cached), then bitten's hardware path (bitten.hardware: one-time boot Pxe, power On,
through sushy-tools' libvirt driver) powers QEMU/TCG virtual machines on, and bitten.provision.boot waits for
each one's report (lease, image, up). First one node alone (the baseline), then N stateless nodes together; each
round starts from power off. Up means the node's report reached the provisioner (sshd running, networkd up); the
time to Slurm idle is not measured here (the lab's summary shows the bare node joining Slurm).

BITTEN_BENCH_BOOT_NODES: N (default 3, at most 3 on two cores). Needs root, libvirt and podman (make test has them).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console

from bitten.capabilities import load_site
from bitten.core.redfish.endpoint import Tls
from bitten.hardware.credentials import CredentialStore
from bitten.hardware.fleet import Settings, run_fleet
from bitten.hardware.targets import endpoint_of, select
from bitten.lab.ca import lab_ca
from bitten.lab.lab import Lab
from bitten.lab.layers.hardware import credentials
from bitten.provision.bmc import RedfishBmc
from bitten.provision.boot import BootResult, http_status, wait_for_boot
from bitten.provision.nodes import boot_nodes, http_base

ROOT = Path(__file__).resolve().parents[1]
INVENTORY = ROOT / "tests" / "provision" / "pxe" / "inventory"
STATELESS = ["pxe-vm01", "pxe-vm02", "pxe-vm09"]
N = min(3, int(os.environ.get("BITTEN_BENCH_BOOT_NODES", "3")))


def boot(lab: Lab, hosts: list[str]) -> dict[str, BootResult]:
    site = lab.site
    creds = credentials(lab)
    tls = Tls(ca_file=str(lab_ca(lab.state).cert_path))
    selection = select(site, CredentialStore(default=creds), hosts)
    status = http_status(f"{http_base(site)}/status")
    since = time.time()
    fleet = run_fleet(selection.targets, "apply", settings=Settings(tls=tls))
    if fleet.failed:
        raise SystemExit(f"power-on failed: {[r.error for r in fleet.failed]}")
    nodes = boot_nodes(site)
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        futures = {h: pool.submit(wait_for_boot, nodes[h], status, RedfishBmc(endpoint_of(site, h), creds, tls),
                                  since, 900.0, 2.0) for h in hosts}
        results = {h: f.result() for h, f in futures.items()}
    for host in hosts:
        RedfishBmc(endpoint_of(site, host), creds, tls).force_off()
    return results


def main() -> int:
    console = Console(width=140)
    os.environ.setdefault("CONTAINERS_CONF", str(ROOT / "lab" / "containers.conf"))
    os.environ.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    work = Path(tempfile.mkdtemp(prefix="bitten-bench-boot-"))
    shutil.copytree(INVENTORY, work / "pxe" / "inventory")
    inventory = work / "pxe" / "inventory"
    lab = Lab(inventory, load_site(inventory), console)
    try:
        lab.down()
        lab.up(playbook=ROOT / "playbooks" / "provision.yml")
        one = boot(lab, STATELESS[:1])
        many = boot(lab, STATELESS[:N])
    finally:
        lab.down()
        shutil.rmtree(work, ignore_errors=True)
    for label, results in (("1 node", one), (f"{N} nodes at once", many)):
        for host, result in results.items():
            console.print(f"{label}: {host}: {result.describe()} (lease after {result.seconds_to_lease} s)")
    if not all(r.ok for r in (*one.values(), *many.values())):
        return 1
    base = one[STATELESS[0]].seconds_to_up or 0.0
    worst = max(r.seconds_to_up or 0.0 for r in many.values())
    mean = sum(r.seconds_to_up or 0.0 for r in many.values()) / len(many)
    print(f"boot: Redfish power-on to up, 1 node {base:.0f} s; {N} nodes at once: last up after {worst:.0f} s, mean "
          f"{mean:.0f} s; ratio (last of {N} / one) {worst / base:.2f}, per node {worst / base / N:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
