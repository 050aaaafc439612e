"""The bare nodes' BMC: sushy-tools' Redfish emulator with its libvirt driver, for the lab's virtual machines.

This is OpenStack's emulator as Ironic and Bifrost test against: each libvirt domain is a ComputerSystem, power
and boot override act on the domain (Reset On starts it, ForceOff destroys it, the boot target rewrites its boot
order), so bitten's real Redfish path powers the VMs on and points them at PXE or their disk. Known differences
from an iLO: BootSourceOverrideEnabled always reads back Continuous, there is no BootProgress and no
SessionService (clients use basic auth), systems are named by their domain's UUID (a name redirects to it).

Run as ``python -m bitten.lab.bare_bmc --config FILE`` (the lab service does): the sushy-tools of the project's
venv, with Debian's python3-libvirt (the binding is compiled against the host's libvirt) appended to the module
path, so the venv's own packages still win. ``SUSHY_EMULATOR_ALLOWED_INSTANCES`` lists the lab's domains only:
no other domain on the host is ever visible or powered through it.
"""

from __future__ import annotations

import sys

#: where Debian installs python3-libvirt (for /usr/bin/python3 of the same minor version)
DIST_PACKAGES = "/usr/lib/python3/dist-packages"


def write_config(path: str, *, host: str, port: int, cert: str, key: str, auth_file: str,
                 allowed: list[str]) -> None:
    """sushy-tools' config file (Python syntax) for the lab's libvirt domains."""
    lines = [
        f"SUSHY_EMULATOR_LISTEN_IP = {host!r}",
        f"SUSHY_EMULATOR_LISTEN_PORT = {port}",
        f"SUSHY_EMULATOR_SSL_CERT = {cert!r}",
        f"SUSHY_EMULATOR_SSL_KEY = {key!r}",
        f"SUSHY_EMULATOR_AUTH_FILE = {auth_file!r}",
        "SUSHY_EMULATOR_LIBVIRT_URI = 'qemu:///system'",
        "SUSHY_EMULATOR_IGNORE_BOOT_DEVICE = False",
        # never None: that hides every system; the names and UUIDs of the lab's domains, nothing else
        f"SUSHY_EMULATOR_ALLOWED_INSTANCES = {sorted(allowed)!r}",
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    if DIST_PACKAGES not in sys.path:
        sys.path.append(DIST_PACKAGES)
    from sushy_tools.emulator.main import main as emulator

    sys.argv = ["sushy-emulator", *(argv if argv is not None else sys.argv[1:])]
    result: int = emulator() or 0
    return result


if __name__ == "__main__":
    sys.exit(main())
