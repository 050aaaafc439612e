#!/usr/bin/env python3
"""Molecule dependency step: create each scenario network with the subnet its platforms' fixed addresses need.

Molecule's podman driver creates a missing network without a subnet (and its schema has no key for one), so
containers with `ip:` could not start; this runs first and makes the network with <ip>/24.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import yaml


def main() -> int:
    scenario = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    config = yaml.safe_load((scenario / "molecule.yml").read_text())
    subnets: dict[str, ipaddress.IPv4Network] = {}
    for platform in config.get("platforms", []):
        if "network" in platform and "ip" in platform:
            subnet = ipaddress.ip_network(f"{platform['ip']}/24", strict=False)
            if subnets.setdefault(platform["network"], subnet) != subnet:
                print(f"{scenario}/molecule.yml: platforms on {platform['network']} span several /24s", file=sys.stderr)
                return 2
    for name, subnet in subnets.items():
        if subprocess.run(["podman", "network", "exists", name], check=False).returncode == 0:
            continue
        subprocess.run(["podman", "network", "create", "--subnet", str(subnet), "--label", "io.bitten.molecule=1",
                        name], check=True, stdout=subprocess.DEVNULL)
        print(f"created podman network {name} {subnet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
