"""Lab layer: bare nodes. Virtual machines that PXE-boot the image bitten builds, through the real Redfish path.

Before the playbooks (setup): libvirt's daemons (started here: the host has no systemd), one powered-off QEMU
domain per provisioned node on the lab network's bridge (bitten.lab.vms), and their BMC, sushy-tools' libvirt
driver on the gateway (``bare-bmc`` service, TLS from the lab CA, the lab's BMC account). The playbooks do the
rest as on a site: the provisioner role on lab-ctl serves DHCP/TFTP/HTTP and the image, the hardware layer powers
the VMs on with a one-time PXE boot through Redfish, the boot stage waits for their reports, and the OS, Slurm and
GPU layers converge them like the containers.

After the playbooks (summary): each bare node's boot - its BMC's power state, its lease from its reservation, the
image it reported, where its root is, and how long it took from power-on to up - then ``sinfo`` for it and a job
that ran on it; MACs that asked for DHCP without a reservation. ``lab down`` removes the domains, their disks and
NVRAM, and stops the daemons the lab started.
"""

from __future__ import annotations

import json
import sys
import urllib.error
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table

from bitten.lab import podman as pm
from bitten.lab import vms
from bitten.lab.bare_bmc import write_config
from bitten.lab.ca import lab_ca
from bitten.lab.lab import Lab, LabError
from bitten.lab.service import SERVICES, SETUPS, SUMMARIES, TEARDOWNS, LabService
from bitten.provision.nodes import boot_nodes, http_base

#: seconds a job on a bare node may take before the summary gives up on it
JOB_TIMEOUT = 60


def state_dir(lab: Lab) -> Path:
    return lab.state / "provision"


def vm_dir(lab: Lab) -> Path:
    return lab.state / "vms"


def boot_record(lab: Lab) -> Path:
    """Where the boot stage writes its results in the lab (boot_record_file in the lab inventory)."""
    return state_dir(lab) / "boot.json"


def bmc_port(lab: Lab) -> int | None:
    """The port the bare nodes' BMCs share on the gateway (one sushy-tools process serves them all)."""
    ports = set()
    for host in lab.vm_hosts:
        bmc = lab.site.nodes[host].bmc
        if bmc is None:
            continue
        address, _, port = bmc.address.rpartition(":")
        if address != lab.gateway or not port:
            raise LabError(f"{host}: a bare node's BMC must be the gateway with a port ({lab.gateway}:8446), "
                           f"not {bmc.address}")
        ports.add(int(port))
    if len(ports) > 1:
        raise LabError(f"the bare nodes' BMCs must share one port on {lab.gateway}; bitten_bmc gives {sorted(ports)}")
    return ports.pop() if ports else None


def bridge(lab: Lab) -> str:
    """The lab network's bridge (podman names it; it exists once a container is attached)."""
    name = pm.network_interface(lab.settings.network)
    if not name:
        raise LabError(f"podman network {lab.settings.network} has no bridge interface")
    return name


def specs(lab: Lab) -> list[vms.VmSpec]:
    out = []
    nodes = boot_nodes(lab.site)
    br = bridge(lab) if nodes else ""
    for name, node in nodes.items():
        profile = lab.site.hardware_profiles[node.profile]
        out.append(vms.VmSpec(
            site=lab.site.info.name, name=name, mac=node.mac, bridge=br,
            memory_mb=max(profile.memory_mb, 1024) + 512, uefi=profile.boot.mode == "UEFI",
            disk=vms.disk_dir(lab.site.info.name) / f"{name}.qcow2" if node.deploy == "disk" else None,
            console=vm_dir(lab) / f"{name}.console"))
    return out


def setup(lab: Lab) -> None:
    if not lab.vm_hosts:
        return
    started = vms.ensure_daemons(lab.run_dir)
    if started:
        lab.console.print(f"[green]✓[/] started {' and '.join(started)} (this host has no systemd to do it)")
    defined = [spec.name for spec in specs(lab) if vms.define(spec)]
    states = ", ".join(f"{h} ({vms.state(h)})" for h in lab.vm_hosts)
    lab.console.print(f"[green]✓[/] {len(lab.vm_hosts)} virtual machine(s) {states}"
                      + (f"; defined {', '.join(defined)} (powered off: the hardware stage powers them on)"
                         if defined else ""))


def argv(lab: Lab) -> list[str]:
    from bitten.lab.doubles.bmc_emulator import write_htpasswd
    from bitten.lab.layers.hardware import HTPASSWD_ROUNDS, credentials

    port = bmc_port(lab)
    directory = state_dir(lab)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    creds = credentials(lab)
    htpasswd = directory / "bmc-htpasswd"
    write_htpasswd(htpasswd, creds.username, creds.password, rounds=HTPASSWD_ROUNDS)
    pair = lab_ca(lab.state).issue("bare-bmc", [lab.gateway], directory)
    allowed = [*lab.vm_hosts, *(s.uuid for s in specs(lab))]
    config = directory / "bare-bmc.conf"
    write_config(str(config), host=lab.gateway, port=port or 8446, cert=str(pair.cert), key=str(pair.key),
                 auth_file=str(htpasswd), allowed=allowed)
    return [sys.executable, "-m", "bitten.lab.bare_bmc", "--config", str(config)]


def _port(lab: Lab) -> int:
    return bmc_port(lab) or 8446


# --- summary ------------------------------------------------------------------------------------------------
def _status(lab: Lab) -> dict[str, Any]:
    from bitten.provision.boot import http_status

    try:
        return dict(http_status(f"{http_base(lab.site)}/status", timeout=5)())
    except (OSError, ValueError, urllib.error.URLError) as exc:
        return {"error": str(exc)}


def _bmc_views(lab: Lab) -> dict[str, Any]:
    from bitten.core.redfish.endpoint import Tls
    from bitten.hardware.targets import endpoint_of
    from bitten.lab.layers.hardware import credentials
    from bitten.provision.bmc import RedfishBmc

    tls = Tls(ca_file=str(lab_ca(lab.state).cert_path))
    creds = credentials(lab)
    return {host: RedfishBmc(endpoint_of(lab.site, host), creds, tls).view() for host in lab.vm_hosts}


def slurm_on(lab: Lab, host: str) -> tuple[str, str]:
    """(sinfo state, job result) for a bare node, through the controller container: the job's result is
    "ran on <host>" when ``hostname`` ran there, else what failed."""
    if not lab.site.controllers:
        return "-", "-"
    ctl = lab.container_name(lab.site.controllers[0])
    try:
        state = pm.exec_in(ctl, ["sinfo", "-h", "-n", host, "-o", "%T"], check=False).stdout.strip() or "unknown"
        job = pm.exec_in(ctl, ["timeout", str(JOB_TIMEOUT), "srun", f"--nodelist={host}", "--nodes=1",
                               "--time=1", "--chdir=/tmp", "--qos=normal", "hostname"], check=False)
    except pm.PodmanError as exc:
        return "?", str(exc)
    ran = job.stdout.strip()
    return state, (f"ran on {ran}" if job.returncode == 0 and ran == host
                   else f"FAILED (exit {job.returncode}): {(job.stderr or job.stdout).strip()[-120:]}")


def summary(lab: Lab) -> object:
    if not lab.vm_hosts:
        return None
    status = _status(lab)
    record: dict[str, Any] = {}
    if boot_record(lab).exists():
        record = json.loads(boot_record(lab).read_text())
    views = _bmc_views(lab)
    nodes = boot_nodes(lab.site)
    table = Table(title=f"bare nodes: PXE from {http_base(lab.site)} (BMC: sushy-tools libvirt driver on "
                        f"{lab.gateway}:{_port(lab)})")
    for column in ("host", "BMC", "lease", "image", "root", "power-on -> up", "Slurm", "job"):
        table.add_column(column)
    for host in lab.vm_hosts:
        node = nodes[host]
        seen = (status.get("nodes") or {}).get(host) or {}
        leases = seen.get("leases") or []
        up = (seen.get("reports") or {}).get("up") or {}
        boot = record.get(host) or {}
        lease = leases[-1]["ip"] if leases else "none"
        if leases and leases[-1]["ip"] != str(node.ip):
            lease += f" (reservation says {node.ip})"
        image = up.get("image_id") or "-"
        if up and image != node.image_id:
            image += f" (profile names {node.image_id})"
        took = boot.get("seconds_to_up")
        slurm, job = slurm_on(lab, host) if up else ("-", "-")
        view = views[host]
        table.add_row(host, view.power or view.error or "?", lease, image, up.get("root") or "-",
                      f"{took:.0f} s" if isinstance(took, int | float) else (boot.get("problem") or "-"),
                      slurm, job)
    parts: list[RenderableType] = [table]
    if "error" in status:
        parts.append(f"[red]the provisioner's status could not be read: {status['error']}[/]")
    for mac, seen in sorted((status.get("unknown_macs") or {}).items()):
        parts.append(f"[yellow]unknown MAC {mac}[/]: {seen.get('requests')} DHCP request(s), no lease (no node of "
                     "the inventory has it)")
    return Group(*parts)


def teardown(lab: Lab) -> dict[str, list[str]]:
    try:
        removed = vms.remove(lab.site.info.name, vm_dir(lab))
    except (vms.VmError, FileNotFoundError):
        removed = []
    stopped = vms.stop_daemons(lab.run_dir) if removed or lab.run_dir.exists() else []
    boot_record(lab).unlink(missing_ok=True)
    return {"virtual machines": removed, "daemons": stopped}


SETUPS.append(setup)
SERVICES.append(LabService(name="bare-bmc", argv=argv, port=_port, enabled=lambda lab: bool(lab.vm_hosts)))
SUMMARIES.append(summary)
TEARDOWNS.append(teardown)
