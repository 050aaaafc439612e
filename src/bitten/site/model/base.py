"""The site's own section: who the site is (``bitten_site``), its nodes (per-host variables), the groups with a fixed
meaning, and the values the site records as not publicly known (``bitten_assumptions``)."""

from __future__ import annotations

import re

from pydantic import field_validator

from bitten.site.model.hardware import Bmc
from bitten.site.model.types import DnsLabel, Section, Strict
from bitten.site.model.values import DomainName, IPv4, TimeZone

MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")

#: inventory groups with a fixed meaning
GROUP_CONTROLLER = "slurm_controller"
GROUP_DBD = "slurm_dbd"
GROUP_LOGIN = "login"
GROUP_UCLOUD = "ucloud_frontend"
GROUP_GPU = "gpu_nodes"
GROUP_CPU = "cpu_nodes"
GROUP_COMPUTE = "compute"
GROUP_PROVISIONERS = "provisioners"


class SiteInfo(Strict):
    name: DnsLabel
    description: str = ""
    #: the site's DNS domain; host names are <host>.<domain>
    domain: DomainName
    #: a time zone of the tz database (the base role sets it on every host)
    timezone: TimeZone = "UTC"
    location: str = ""


class Node(Strict):
    name: DnsLabel
    groups: tuple[str, ...]
    ip: IPv4
    hardware_profile: str | None = None
    bmc: Bmc | None = None
    boot_mac: str | None = None
    cooling_loop: str | None = None

    @field_validator("boot_mac")
    @classmethod
    def _mac(cls, value: str | None) -> str | None:
        if value is None:
            return None
        mac = value.lower().replace("-", ":")
        if not MAC_RE.match(mac):
            raise ValueError(f"{value!r} is not a MAC address (expected six hex pairs, e.g. 94:40:c9:00:00:01)")
        return mac


#: per-host variables (may be set per group): variable -> (Node field, what it is)
HOST_VARS: dict[str, tuple[str, str]] = {
    "bitten_ip": ("ip", "the node's address on the cluster network"),
    "bitten_hardware_profile": ("hardware_profile", "name of the node's hardware profile"),
    "bitten_bmc": ("bmc", "where the node's BMC answers Redfish"),
    "bitten_boot_mac": ("boot_mac", "MAC address the node PXE-boots from"),
    "bitten_cooling_loop": ("cooling_loop", "the cooling loop that cools the node"),
}

SECTIONS = (
    Section("bitten_site", "info", SiteInfo, "identity of the site: name, domain, timezone", required=True,
            stand_in={"name": "invalid", "domain": "invalid"}),
    Section("bitten_assumptions", "assumptions", str, "values of this site that are not publicly known",
            shape="list"),
)
