"""The provisioning capability: its cross-checks, the files the provisioner and each booted node get, the values the
provisioner role and the boot stage read (lookup bitten_facts), and the filters its templates use."""

from __future__ import annotations

from typing import Any

from bitten.core.capability import Capability
from bitten.provision.checks import check_provision
from bitten.provision.facts import provisioner_facts
from bitten.provision.files import FILES
from bitten.provision.nodes import boot_nodes, http_base, provisioner
from bitten.site.model import Site


def _boot_nodes(site: Site) -> Any:
    return boot_nodes(site)


CAPABILITY = Capability(
    name="provision",
    checks=(check_provision,),
    files=FILES,
    facts=provisioner_facts,
    filters={"provision_boot_nodes": _boot_nodes, "provision_http_base": http_base,
             "provision_provisioner": provisioner},
)
