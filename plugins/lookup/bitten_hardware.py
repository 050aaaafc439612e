"""Ansible front end of the site model for the hardware stage: each node's BMC and desired BMC state."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

DOCUMENTATION = r"""
name: bitten_hardware
short_description: every node's BMC and desired BMC state, from the validated site model
description:
  - Builds the site model from the play's inventory (the same validation as C(bitten validate), every problem at
    once) and returns a mapping host -> {bmc, bios, boot, power, boot_mac} for each node that has a BMC and a
    hardware profile. Fails, naming every problem, when the site is invalid, so that nothing reaches a BMC.
options: {}
"""

RETURN = r"""
_raw:
  description: one mapping, host name -> desired BMC state
  type: list
  elements: dict
"""


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        from bitten.capabilities import site_from_play
        from bitten.hardware.targets import desired_of
        from bitten.site import SiteError

        try:
            site = site_from_play(variables or {})
        except SiteError as exc:
            raise AnsibleLookupError(f"the site description is invalid; no BMC was contacted:\n{exc}") from None
        nodes: dict[str, Any] = {}
        for host, node in sorted(site.nodes.items()):
            if node.bmc is None or site.profile_of(host) is None:
                continue
            desired = desired_of(site, host)
            nodes[host] = {"bmc": node.bmc.model_dump(), **desired.as_dict()}
        return [nodes]
