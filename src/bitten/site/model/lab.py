"""The lab section (``bitten_lab``): how `bitten lab` builds an inventory on one machine (lab inventories only)."""

from __future__ import annotations

import ipaddress
from typing import Literal

from bitten.site.model.types import DnsLabel, Section, Strict


class LabSettings(Strict):
    """How `bitten lab` builds this inventory on one machine (only the lab inventory sets it)."""

    #: podman network the lab's containers join; its gateway (first address) runs the emulators
    network: DnsLabel = "bitten-lab"
    subnet: ipaddress.IPv4Network = ipaddress.IPv4Network("10.77.0.0/24")
    #: Debian release of the node containers
    release: Literal["trixie", "bookworm"] = "trixie"

    @property
    def gateway(self) -> str:
        return str(next(self.subnet.hosts()))


SECTIONS = (
    Section("bitten_lab", "lab", LabSettings, "how `bitten lab` builds the site on one machine (lab inventories only)"),
)
