"""From the site model to fleet targets: every node with a BMC and a hardware profile."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bitten.core.redfish.endpoint import Endpoint
from bitten.hardware.credentials import CredentialStore
from bitten.hardware.fleet import Target
from bitten.hardware.plan import DesiredBmcState
from bitten.site.model import Site


@dataclass(frozen=True)
class Selection:
    targets: list[Target]
    #: hosts left out, with the reason (no BMC, no hardware profile)
    skipped: dict[str, str]


def endpoint_of(site: Site, host: str) -> Endpoint:
    bmc = site.nodes[host].bmc
    if bmc is None:
        raise KeyError(f"host {host} has no bitten_bmc")
    return Endpoint(host=host, url=bmc.url, system_id=bmc.system_id, flavour=bmc.flavour)


def desired_of(site: Site, host: str) -> DesiredBmcState:
    profile = site.profile_of(host)
    if profile is None:
        raise KeyError(f"host {host} has no hardware profile")
    return DesiredBmcState.from_profile(profile, site.nodes[host].boot_mac, site.rollout.firmware_repository)


def select_hosts(site: Site, limit: Sequence[str] = ()) -> list[str]:
    """Hosts named by ``limit`` (host or group names; empty: all), sorted; unknown names raise KeyError."""
    if not limit:
        return sorted(site.nodes)
    chosen: set[str] = set()
    unknown = []
    for item in limit:
        for name in (n.strip() for n in item.split(",")):
            if not name:
                continue
            if name in site.nodes:
                chosen.add(name)
            elif name in site.groups:
                chosen.update(site.groups[name])
            else:
                unknown.append(name)
    if unknown:
        raise KeyError(f"no host or group named {', '.join(unknown)} in the inventory")
    return sorted(chosen)


def select(site: Site, credentials: CredentialStore, limit: Sequence[str] = ()) -> Selection:
    """Targets for the selected hosts. Credentials are resolved here, before any BMC is contacted."""
    targets: list[Target] = []
    skipped: dict[str, str] = {}
    for host in select_hosts(site, limit):
        node = site.nodes[host]
        if node.bmc is None:
            skipped[host] = "no bitten_bmc"
            continue
        if site.profile_of(host) is None:
            skipped[host] = "no hardware profile"
            continue
        targets.append(Target(endpoint_of(site, host), desired_of(site, host), credentials.for_host(host)))
    return Selection(targets, skipped)
