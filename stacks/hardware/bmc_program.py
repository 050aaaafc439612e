"""The stack's wiring, importable by tests (Pulumi's mocks) without running __main__: the site from its inventory
(validated, every problem at once, before any BMC is contacted), then one RedfishNode per node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi

from bitten.capabilities import load_site
from bitten.hardware.pulumi_provider import RedfishNode
from bitten.hardware.stack import accounts, declare, export
from bitten.site import SiteError


def program(project_dir: Path | None = None) -> dict[str, RedfishNode]:
    """The stack's program (stacks/hardware/__main__.py calls it)."""
    project_dir = project_dir or Path.cwd()
    config = pulumi.Config("bitten-hardware")
    inventory = project_dir / config.require("inventory")
    try:
        site = load_site(inventory)
    except SiteError as exc:
        raise pulumi.RunError(f"the site description is invalid; no BMC was contacted:\n{exc}") from None
    ca_file = config.get("bmcCaFile")
    ca_pem = (project_dir / ca_file).read_text() if ca_file else None
    settings: dict[str, Any] = {}
    for key, name, kind in (("reboot", "reboot", bool), ("check_boot_mac", "checkBootMac", bool),
                            ("power_timeout", "powerTimeout", float), ("timeout", "timeout", float),
                            ("retries", "retries", int)):
        value = config.get_bool(name) if kind is bool else config.get_float(name) if kind is float else \
            config.get_int(name)
        if value is not None:
            settings[key] = value
    verify = config.get_bool("bmcVerify")
    nodes = declare(site, accounts(config, project_dir), ca_pem=ca_pem, verify=True if verify is None else verify,
                    limit=config.get_object("limit") or (), settings=settings)
    export(nodes)
    return nodes
