"""The site's own checks: what makes an inventory a site, whatever capabilities run on it (unique addresses, MACs
and BMCs; every compute node with a known hardware profile). Capabilities add their cross-checks in their own
``checks`` modules (see bitten.capabilities)."""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator

from bitten.site import model as m
from bitten.site.locate import Declared, Locator
from bitten.site.model.values import host_port
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
            if node.name in compute and f"bitten_hardware_profile@{node.name}" not in declared["invalid"]:
                yield Problem(file=locator.find(node.name, "bitten_ip"), host=node.name,
                              field="bitten_hardware_profile", message="compute node without a hardware profile",
                              fix=f"set bitten_hardware_profile for its group; defined profiles: {known}")
        elif name not in declared["profiles"]:
            yield Problem(file=locator.find(node.name, "bitten_hardware_profile"), host=node.name,
                          field="bitten_hardware_profile", message=f"unknown hardware profile {name!r}",
                          fix=f"use one of: {known}, or define it in bitten_hardware_profiles")


_NUMBERED = re.compile(r"^(.*?)(\d+)$")


def check_host_names(site: m.Site, locator: Locator, declared: Declared) -> Iterator[Problem]:
    """Host names Slurm's hostlist notation folds together (gpu1 and gpu01: one prefix, one number, two paddings),
    and names too long for DNS with the site's domain."""
    by_number: dict[tuple[str, int], list[str]] = defaultdict(list)
    for name in site.nodes:
        match = _NUMBERED.match(name)
        if match:
            by_number[(match[1], int(match[2]))].append(name)
    for names in by_number.values():
        if len(names) > 1:
            names.sort()
            for name in names:
                others = ", ".join(n for n in names if n != name)
                yield Problem(file=locator.find(name, "bitten_ip"), host=name, field="hostname",
                              message=f"{name} and {others} differ only in zero padding: Slurm's hostlist ranges "
                              "(NodeName=, Nodes=, sinfo) number them alike and fold them together",
                              fix="give every node of a series the same number of digits (gpu01 .. gpu16)")
    if "bitten_site" in declared["invalid"]:
        return
    for name in site.nodes:
        fqdn = site.fqdn(name)
        if len(fqdn) > 253:
            yield Problem(file=locator.find(name, "bitten_ip"), host=name, field="hostname",
                          message=f"{fqdn[:40]}... is {len(fqdn)} characters, longer than DNS allows (253)",
                          fix="shorten the host name or bitten_site.domain")


def check_addresses(site: m.Site, locator: Locator, declared: Declared) -> Iterator[Problem]:
    """A BMC never answers on a node's cluster address; lab nodes sit inside the lab's subnet, off its gateway."""
    cluster = {str(node.ip): node.name for node in site.nodes.values() if node.ip is not None}
    for node in site.nodes.values():
        if node.bmc is None:
            continue
        try:
            bmc_host = host_port(node.bmc.address)[0]
        except ValueError:
            continue
        owner = cluster.get(bmc_host)
        if owner is not None:
            yield Problem(file=locator.find(node.name, "bitten_bmc", ["address"]), host=node.name,
                          field="bitten_bmc.address", message=f"BMC address {bmc_host} is the cluster address "
                          f"(bitten_ip) of {owner}", fix="give the BMC its own address on the management network")
    lab = site.lab
    if lab is None:
        return
    gateway = ipaddress.IPv4Address(lab.gateway)
    for node in site.nodes.values():
        if node.ip is None:
            continue
        where = locator.find(node.name, "bitten_ip")
        if node.ip not in lab.subnet:
            yield Problem(file=where, host=node.name, field="bitten_ip",
                          message=f"{node.ip} is outside the lab subnet {lab.subnet} (bitten_lab.subnet)",
                          fix=f"give the node an address in {lab.subnet}, or widen bitten_lab.subnet")
        elif node.ip == gateway:
            yield Problem(file=where, host=node.name, field="bitten_ip",
                          message=f"{node.ip} is the lab's gateway, where the emulators listen",
                          fix=f"use another address of {lab.subnet}")
        elif node.ip in (lab.subnet.network_address, lab.subnet.broadcast_address):
            yield Problem(file=where, host=node.name, field="bitten_ip",
                          message=f"{node.ip} is the network or broadcast address of {lab.subnet}",
                          fix=f"use a host address of {lab.subnet}")


SITE_CHECKS: tuple[Check, ...] = (check_unique, check_profiles, check_host_names, check_addresses)
