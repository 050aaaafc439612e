"""Cross-checks of the hardware capability: BMCs reached safely, with a flavour bitten knows."""

from __future__ import annotations

from collections.abc import Iterator

from bitten.core.redfish import flavours
from bitten.site import model as m
from bitten.site.locate import Declared, Locator
from bitten.site.problems import Problem


def check_bmcs(site: m.Site, locator: Locator, declared: Declared) -> Iterator[Problem]:
    """BMC credentials never cross the network in clear text (plain http only to an emulator on loopback)."""
    for node in site.nodes.values():
        bmc = node.bmc
        if bmc is None or bmc.scheme != "http":
            continue
        host = bmc.address.rsplit(":", 1)[0].strip("[]") if bmc.address.count(":") <= 1 else bmc.address
        if host in ("localhost", "127.0.0.1", "::1"):
            continue
        yield Problem(file=locator.find(node.name, "bitten_bmc", ["scheme"]), host=node.name,
                      field="bitten_bmc.scheme", message="http would send the BMC credentials in clear text",
                      fix="use scheme: https (iLO serves Redfish over https) and give the BMC CA to bitten")


def check_flavours(site: m.Site, locator: Locator, declared: Declared) -> Iterator[Problem]:
    """Every BMC's flavour is a module of bitten.core.redfish.flavours (the registry is the list of choices)."""
    known = flavours.names()
    for node in site.nodes.values():
        bmc = node.bmc
        if bmc is None or bmc.flavour in known:
            continue
        yield Problem(file=locator.find(node.name, "bitten_bmc", ["flavour"]), host=node.name,
                      field="bitten_bmc.flavour", message=f"unknown Redfish flavour {bmc.flavour!r}",
                      fix=f"use one of {', '.join(known)}, or add a module to bitten/core/redfish/flavours/")
