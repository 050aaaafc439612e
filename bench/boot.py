"""Bench: Redfish power-on to Slurm idle for one virtual node, then for N at once, as a ratio to the one-node time.

A lab of bare nodes of its own (tests/provision/pxe, network bitten-pxe): pxe-ctl is converged first (the
provisioner role serves the image, built once per recipe hash and cached; the slurm role makes it the Slurm
controller). Then each round, from power off: bitten's hardware path (bitten.hardware: one-time boot Pxe, power On,
through sushy-tools' libvirt driver) powers QEMU/TCG virtual machines on; bitten.provision.boot waits for each one's
report (lease, image, up); the base and Slurm layers converge them (ansible-playbook, --tags base,slurm: a stateless
node boots with its identity only, munge's key and slurm.conf come from the playbooks); `sinfo` on pxe-ctl, polled
while the playbook runs, gives the moment each node is idle; a job runs on each. First one node alone (the
baseline), then N stateless nodes together.

Printed per node: power-on -> lease, -> up (its report), -> Slurm idle; per round the last node's idle time and
the ratio N-node / one-node.

BITTEN_BENCH_BOOT_NODES: N (default 2, at most 2: the two cores are the limit, and the N-node round uses nodes the
one-node round did not boot: a node power-cycled behind Slurm's back within SlurmdTimeout comes back DOWN, "Node
unexpectedly rebooted", which ReturnToService=1 does not return to service).
Needs root, libvirt and podman (scripts/host-deps --vm).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from bitten.capabilities import load_site
from bitten.core.redfish.endpoint import Tls
from bitten.hardware.credentials import CredentialStore
from bitten.hardware.fleet import Settings, run_fleet
from bitten.hardware.targets import endpoint_of, select
from bitten.lab import podman as pm
from bitten.lab.ca import lab_ca
from bitten.lab.lab import Lab
from bitten.lab.layers.hardware import credentials
from bitten.lab.layers.provision import slurm_on
from bitten.provision.bmc import RedfishBmc
from bitten.provision.boot import BootResult, http_status, wait_for_boot
from bitten.provision.nodes import boot_nodes, http_base

ROOT = Path(__file__).resolve().parents[1]
INVENTORY = ROOT / "tests" / "provision" / "pxe" / "inventory"
PLAYBOOK = ROOT / "tests" / "provision" / "pxe" / "boot.yml"
CONTROLLER = "pxe-ctl"
STATELESS = ["pxe-vm01", "pxe-vm02", "pxe-vm09"]
N = max(1, min(2, int(os.environ.get("BITTEN_BENCH_BOOT_NODES", "2"))))
#: seconds a node may take from power-on to Slurm idle before the bench gives up on it
IDLE_TIMEOUT = 1200.0


@dataclass
class Timing:
    boot: BootResult
    #: seconds from power-on to `sinfo` showing the node idle, or None
    idle: float | None = None
    job: str = "-"

    def line(self) -> str:
        b = self.boot
        idle = f"{self.idle:.0f} s" if self.idle is not None else "never"
        return (f"lease {b.seconds_to_lease} s, up {b.seconds_to_up} s, Slurm idle {idle} after power-on; "
                f"job: {self.job}")


class IdleWatch(threading.Thread):
    """Polls `scontrol show node` on the controller until every host shows idle from a slurmd started after
    ``since``; records when each first did. (Slurm keeps showing a node idle for SlurmdTimeout after it was powered
    off: the previous round's idle does not count.)"""

    def __init__(self, lab: Lab, hosts: list[str], since: float) -> None:
        super().__init__(daemon=True)
        self.lab, self.hosts, self.since = lab, hosts, since
        self.idle: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set() and len(self.idle) < len(self.hosts):
            proc = pm.exec_in(CONTROLLER, ["scontrol", "show", "node", "-o", ",".join(self.hosts)], check=False)
            now = time.time()
            for line in proc.stdout.splitlines():
                fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
                name, state = fields.get("NodeName", ""), fields.get("State", "")
                started = _slurm_time(fields.get("SlurmdStartTime", ""))
                if (state == "IDLE" and started is not None and started >= self.since - 2
                        and name in self.hosts and name not in self.idle):
                    self.idle[name] = now - self.since
            self.stop.wait(1.0)


def _slurm_time(value: str) -> float | None:
    """A time scontrol printed (the controller's zone is the site's, UTC here) as seconds since the epoch."""
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def round_(lab: Lab, hosts: list[str]) -> dict[str, Timing]:
    """Power ``hosts`` on through Redfish, wait for their reports, converge them, wait for Slurm idle; power off."""
    site = lab.site
    creds = credentials(lab)
    tls = Tls(ca_file=str(lab_ca(lab.state).cert_path))
    selection = select(site, CredentialStore(default=creds), hosts)
    status = http_status(f"{http_base(site)}/status")
    nodes = boot_nodes(site)
    since = time.time()
    watch = IdleWatch(lab, hosts, since)
    try:
        fleet = run_fleet(selection.targets, "apply", settings=Settings(tls=tls))
        if fleet.failed:
            raise SystemExit(f"power-on failed: {[r.error for r in fleet.failed]}")
        with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
            futures = {h: pool.submit(wait_for_boot, nodes[h], status,
                                      RedfishBmc(endpoint_of(site, h), creds, tls), since, 900.0, 2.0)
                       for h in hosts}
            booted = {h: f.result() for h, f in futures.items()}
        timings = {h: Timing(b) for h, b in booted.items()}
        if not all(b.ok for b in booted.values()):
            return timings
        watch.start()
        recap = lab.run_playbook(PLAYBOOK, ["--limit", ",".join([CONTROLLER, *hosts]), "--tags", "base,slurm"])
        watch.join(timeout=max(0.0, IDLE_TIMEOUT - (time.time() - since)))
        if recap.returncode != 0:
            raise SystemExit(f"the base and Slurm layers failed on {hosts} (exit {recap.returncode})")
        for host in hosts:
            timings[host].idle = watch.idle.get(host)
            timings[host].job = slurm_on(lab, host)[1]
        return timings
    finally:
        watch.stop.set()
        for host in hosts:
            RedfishBmc(endpoint_of(site, host), creds, tls).force_off()


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
        # the containers and services, then the controller alone (lab.up with a playbook would also run the
        # summary's checks, whose job cannot run before any node is up)
        lab.up(playbook=None)
        recap = lab.run_playbook(PLAYBOOK, ["--limit", CONTROLLER])
        if recap.returncode != 0:
            raise SystemExit(f"converging {CONTROLLER} failed (exit {recap.returncode})")
        one = round_(lab, STATELESS[:1])
        many = round_(lab, STATELESS[1:N + 1]) if all(t.idle is not None for t in one.values()) else {}
    finally:
        lab.down()
        shutil.rmtree(work, ignore_errors=True)
    for label, timings in (("1 node", one), (f"{N} nodes at once", many)):
        for host, timing in timings.items():
            console.print(f"{label}: {host}: {timing.line()}")
    done = [*one.values(), *many.values()]
    if not many or not all(t.idle is not None and t.job.startswith("ran on") for t in done):
        console.print("[red]a node did not reach Slurm idle or its job failed[/]")
        return 1
    base = one[STATELESS[0]].idle or 0.0
    base_up = one[STATELESS[0]].boot.seconds_to_up or 0.0
    worst = max(t.idle or 0.0 for t in many.values())
    worst_up = max(t.boot.seconds_to_up or 0.0 for t in many.values())
    print(f"boot: Redfish power-on to Slurm idle, 1 node {base:.0f} s (up after {base_up:.0f} s); {N} nodes at "
          f"once: last idle after {worst:.0f} s (last up after {worst_up:.0f} s); ratio (last of {N} / one) "
          f"{worst / base:.2f} to idle, {worst_up / base_up:.2f} to up")
    return 0


if __name__ == "__main__":
    sys.exit(main())
