"""Cross-checks of the hardware capability: BMCs reached safely, with a flavour bitten knows; firmware images
from the site's own server."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

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


def check_firmware(site: m.Site, locator: Locator, declared: Declared) -> Iterator[Problem]:
    """Firmware images come from the site's own HTTP server: bitten_rollout.firmware_repository, a host of the
    inventory (a BMC fetches what its SimpleUpdate names, with no credentials of bitten's, from that server)."""
    repository = site.rollout.firmware_repository
    var = "bitten_rollout"
    if repository is not None:
        parsed = urlsplit(repository)
        hosts = {name.lower() for name in site.nodes} | {f"{name}.{site.info.domain}".lower() for name in site.nodes}
        hosts |= {str(node.ip) for node in site.nodes.values()}
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            yield Problem(file=locator.find(None, var, ["firmware_repository"]), field=f"{var}.firmware_repository",
                          message=f"{repository!r} is not an http(s) URL",
                          fix="give the URL of the site's HTTP server that holds the images, e.g. "
                          "http://10.0.0.5/firmware/")
        elif parsed.hostname.lower() not in hosts:
            yield Problem(file=locator.find(None, var, ["firmware_repository"]), field=f"{var}.firmware_repository",
                          message=f"{parsed.hostname} is not a host of this inventory: firmware images come from "
                          "the site's own HTTP server", fix="name a service node of the inventory (by name, FQDN "
                          "or bitten_ip) that serves the images")
    for name, profile in sorted(site.hardware_profiles.items()):
        for label, firmware in sorted(profile.firmware.items()):
            field = f"bitten_hardware_profiles.{name}.firmware.{label}.image"
            where = locator.find(None, "bitten_hardware_profiles", [name, "firmware", label, "image"])
            absolute = firmware.image.startswith(("http://", "https://"))
            if repository is None:
                yield Problem(file=where, field=field, message="a firmware image needs bitten_rollout."
                              "firmware_repository (the site's HTTP server the BMCs fetch it from)",
                              fix="set bitten_rollout.firmware_repository and give the image as a path under it")
            elif absolute and not firmware.image.startswith(repository.rstrip("/") + "/"):
                yield Problem(file=where, field=field, message=f"{firmware.image} is not under the firmware "
                              f"repository {repository}", fix="give the image as a path under "
                              "bitten_rollout.firmware_repository")
