#!/usr/bin/env python3
"""Molecule dependency step (runs before create): each scenario's podman networks and its SSH access.

Networks: Molecule's podman driver creates a missing network without a subnet (and its schema has no key for one),
so containers with `ip:` could not start; this makes the network with <ip>/24.

SSH: the scenarios reach their containers over SSH with pipelining (one connection per host, one round trip per
task) instead of the podman connection (several `podman exec`/`podman cp` per task: about three times the wall
time and four times the CPU per task on this project's machines). This writes the scenario's throwaway key pair
into Molecule's ephemeral directory (0600), the public half as the file each platform mounts read-only as root's
authorized_keys, and forgets host keys and connection sockets of earlier containers at the same addresses.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import yaml


def networks(scenario: Path, platforms: list[dict[str, object]]) -> int:
    subnets: dict[str, ipaddress.IPv4Network | ipaddress.IPv6Network] = {}
    for platform in platforms:
        if "network" in platform and "ip" in platform:
            subnet = ipaddress.ip_network(f"{platform['ip']}/24", strict=False)
            if subnets.setdefault(str(platform["network"]), subnet) != subnet:
                print(f"{scenario}/molecule.yml: platforms on {platform['network']} span several /24s", file=sys.stderr)
                return 2
    for name, subnet in subnets.items():
        if subprocess.run(["podman", "network", "exists", name], check=False).returncode == 0:
            continue
        subprocess.run(["podman", "network", "create", "--subnet", str(subnet), "--label", "io.bitten.molecule=1",
                        name], check=True, stdout=subprocess.DEVNULL)
        print(f"created podman network {name} {subnet}")
    return 0


def ssh_access(ephemeral: Path) -> None:
    keys = ephemeral / "ssh"
    keys.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = keys / "id_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bitten-molecule", "-f", str(key)],
                       check=True)
    key.chmod(0o600)
    authorized = keys / "authorized_keys"
    authorized.write_text(key.with_suffix(".pub").read_text())
    authorized.chmod(0o644)
    # new containers at the same addresses have new host keys, and an old master connection is dead
    (keys / "known_hosts").write_text("")
    for socket in keys.glob("cp-*"):
        socket.unlink()


def main() -> int:
    # Molecule gives the shell dependency no MOLECULE_* environment: the command line carries both directories
    scenario = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    ephemeral = Path(sys.argv[2] if len(sys.argv) > 2 else os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
    config = yaml.safe_load((scenario / "molecule.yml").read_text())
    status = networks(scenario, config.get("platforms", []))
    if status == 0:
        ssh_access(ephemeral)
    return status


if __name__ == "__main__":
    sys.exit(main())
