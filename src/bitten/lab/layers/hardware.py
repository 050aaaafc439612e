"""The hardware layer of the lab: one emulated BMC system per lab node, served with TLS on the lab gateway.

Importing this module registers the ``redfish`` lab service (see bitten.lab.layers.LAYERS). Before it starts,
the service prepares, under .lab/ (never committed):

- ``ca/``: the lab CA (shared with other lab services) and ``bmc/tls.pem``, a certificate for the gateway;
- ``bmc/username``, ``bmc/password`` (0600, generated once) and ``bmc/credentials.yml`` (for
  BITTEN_BMC_CREDENTIALS), ``bmc/htpasswd`` (bcrypt) for the emulator;
- ``bmc/emulator.json``: one system per node whose ``bitten_bmc`` points at the gateway, named like the node, with
  its boot MAC, its profile's CPUs and memory, powered off, and ``bmc/state/`` for the emulator's database.

The state lives as long as the emulator process: a ``make lab`` on a running lab finds the BMCs as the previous
run left them (the hardware stage changes nothing), while a lab brought up again after ``make lab-down`` gets
factory-fresh BMCs, all off.

The lab inventory reads the credentials and the CA from there (inventory/lab/group_vars/all/hardware.yml), and
playbooks/hardware.yml converges the BMCs first. After the playbooks, the summary shows each BMC's state.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bitten.core.redfish.credentials import Credentials
from bitten.hardware.credentials import CredentialStore
from bitten.lab.ca import lab_ca
from bitten.lab.doubles.bmc_emulator import DEFAULT_BIOS, SystemSpec, write_htpasswd
from bitten.lab.service import SERVICES, LabService

if TYPE_CHECKING:
    from bitten.lab.lab import Lab

USERNAME = "bitten-lab"
#: bcrypt cost of the lab's htpasswd: checked on every request, so kept low; the password is random and local
HTPASSWD_ROUNDS = 6


def bmc_dir(lab: Lab) -> Path:
    return lab.state / "bmc"


def emulated_hosts(lab: Lab) -> dict[str, int]:
    """Lab nodes whose BMC is on the gateway, with the port it answers on (the bare nodes' BMCs are sushy-tools'
    libvirt driver instead, bitten.lab.provision)."""
    hosts: dict[str, int] = {}
    bare = set(lab.vm_hosts)
    for name, node in sorted(lab.site.nodes.items()):
        if node.bmc is None or name in bare:
            continue
        address, _, port = node.bmc.address.rpartition(":")
        if (address or node.bmc.address) == lab.gateway:
            hosts[name] = int(port) if address else (443 if node.bmc.scheme == "https" else 80)
    return hosts


def port(lab: Lab) -> int:
    ports = set(emulated_hosts(lab).values())
    if len(ports) != 1:
        raise ValueError(f"lab BMCs must share one port on {lab.gateway}; bitten_bmc gives {sorted(ports) or 'none'}")
    return ports.pop()


def credentials(lab: Lab) -> Credentials:
    """The lab's BMC account, generated on first use (files 0600 under .lab/bmc)."""
    directory = bmc_dir(lab)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    user_file, password_file = directory / "username", directory / "password"
    if not password_file.exists():
        for path, value in ((user_file, USERNAME), (password_file, secrets.token_urlsafe(24))):
            path.touch(mode=0o600)
            path.write_text(value)
    creds = Credentials(user_file.read_text().strip(), password_file.read_text().strip())
    store = directory / "credentials.yml"
    store.touch(mode=0o600)
    store.chmod(0o600)
    store.write_text(yaml.safe_dump({"username": creds.username, "password": creds.password}))
    return creds


def systems(lab: Lab) -> list[SystemSpec]:
    out = []
    for host in emulated_hosts(lab):
        node = lab.site.nodes[host]
        profile = lab.site.profile_of(host)
        bios = dict(DEFAULT_BIOS)
        spec: dict[str, Any] = {"name": host, "macs": (node.boot_mac,) if node.boot_mac else (), "bios": bios}
        if profile is not None:
            spec.update(cpus=profile.cpu.sockets, cores_per_cpu=profile.cpu.cores_per_socket,
                        cpu_model=profile.cpu.model, memory_gib=max(1, profile.memory_mb // 1024))
        out.append(SystemSpec(**spec))
    return out


def prepare(lab: Lab) -> Path:
    """CA, certificate, account, htpasswd and emulator config; returns the config's path."""
    directory = bmc_dir(lab)
    creds = credentials(lab)
    # the service starts only when its emulator is not running: fresh BMCs (see the module docstring)
    shutil.rmtree(directory / "state", ignore_errors=True)
    ca = lab_ca(lab.state)
    pair = ca.issue("tls", [lab.gateway], directory)
    htpasswd = directory / "htpasswd"
    write_htpasswd(htpasswd, creds.username, creds.password, rounds=HTPASSWD_ROUNDS)
    config = {
        "host": lab.gateway, "port": port(lab), "state_dir": str(directory / "state"), "cert": str(pair.cert),
        "key": str(pair.key), "auth_file": str(htpasswd), "power_delay": 0.0,
        "systems": [s.as_dict() for s in systems(lab)],
    }
    path = directory / "emulator.json"
    path.write_text(json.dumps(config, indent=1) + "\n")
    return path


def argv(lab: Lab) -> list[str]:
    return [sys.executable, "-m", "bitten.lab.doubles.bmc_emulator", "--config", str(prepare(lab))]


def summary(lab: Lab) -> object:
    """Each lab BMC as the emulator reports it after the playbooks (a plan: nothing is written)."""
    # imported here, not at the top: only this path needs it, and start-up stays light
    from rich.console import Group

    from bitten.core.redfish.endpoint import Tls
    from bitten.hardware.fleet import Settings, run_fleet
    from bitten.hardware.report import fleet_table
    from bitten.hardware.report import summary as summary_line
    from bitten.hardware.targets import select

    store = CredentialStore(default=credentials(lab), source=str(bmc_dir(lab)))
    selection = select(lab.site, store, list(emulated_hosts(lab)))
    result = run_fleet(selection.targets, "plan",
                       settings=Settings(tls=Tls(ca_file=str(lab_ca(lab.state).cert_path))))
    title = f"BMCs: Redfish emulator on {lab.gateway}:{port(lab)} (sushy-tools)"
    return Group(fleet_table(result, title=title), summary_line(result))


SERVICES.append(LabService(name="redfish", argv=argv, summary=summary, port=port,
                           enabled=lambda lab: bool(emulated_hosts(lab))))
