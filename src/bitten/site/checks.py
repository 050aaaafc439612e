"""The site's own checks: what makes an inventory a site, whatever capabilities run on it (unique addresses, MACs
and BMCs; every compute node with a known hardware profile). Capabilities add their cross-checks in their own
``checks`` modules (see bitten.capabilities)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator

from bitten.site import model as m
from bitten.site.locate import Declared, Locator
from bitten.site.problems import Problem

#: a cross-check: site, where values came from, the names each section declares (valid or not) -> problems
Check = Callable[[m.Site, Locator, Declared], Iterable[Problem]]


def run_checks(site: m.Site, locator: Locator, declared: Declared, checks: Iterable[Check]) -> list[Problem]:
    """Run ``checks`` (the site's own first); ``declared`` holds the names each section declares, valid or not."""
    problems: list[Problem] = []
    for check in (*SITE_CHECKS, *checks):
        problems.extend(check(site, locator, declared))
    return problems


def _duplicates(site: m.Site, locator: Locator, what: str, var: str,
                key: Callable[[m.Node], object | None]) -> Iterator[Problem]:
    owners: dict[object, list[str]] = defaultdict(list)
    for node in site.nodes.values():
        value = key(node)
        if value is not None:
            owners[value].append(node.name)
    for value, hosts in owners.items():
        if len(hosts) > 1:
            shown = value if not isinstance(value, tuple) else "/".join(str(v) for v in value)
            for host in hosts:
                others = ", ".join(h for h in hosts if h != host)
                yield Problem(file=locator.find(host, var), host=host, field=var,
                              message=f"{what} {shown} is also used by {others}",
                              fix=f"give every host its own {what}")

def check_unique(site: m.Site, locator: Locator, declared: Declared) -> Iterator[Problem]:
    yield from _duplicates(site, locator, "IP address", "bitten_ip", lambda n: n.ip)
    yield from _duplicates(site, locator, "boot MAC", "bitten_boot_mac", lambda n: n.boot_mac)
    yield from _duplicates(site, locator, "BMC", "bitten_bmc", lambda n: n.bmc.key if n.bmc else None)

def check_profiles(site: m.Site, locator: Locator, declared: Declared) -> Iterator[Problem]:
    known = ", ".join(sorted(declared["profiles"])) or "none defined"
    compute = set(site.compute_nodes)
    for node in site.nodes.values():
        name = node.hardware_profile
        if name is None:
            if node.name in compute:
                yield Problem(file=locator.find(node.name, "bitten_ip"), host=node.name,
                              field="bitten_hardware_profile", message="compute node without a hardware profile",
                              fix=f"set bitten_hardware_profile for its group; defined profiles: {known}")
        elif name not in declared["profiles"]:
            yield Problem(file=locator.find(node.name, "bitten_hardware_profile"), host=node.name,
                          field="bitten_hardware_profile", message=f"unknown hardware profile {name!r}",
                          fix=f"use one of: {known}, or define it in bitten_hardware_profiles")


SITE_CHECKS: tuple[Check, ...] = (check_unique, check_profiles)
