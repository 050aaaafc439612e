"""Ansible front end of bitten.fabric.facts: what the InfiniBand fabric means for a host."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

DOCUMENTATION = r"""
name: bitten_fabric_facts
short_description: the fabric facts of a host, derived from the site model
description:
  - Builds the site model from the play's inventory and returns, for one host, a dict with C(defined) (the site has
    a bitten_fabric), C(on_fabric), C(hcas), C(sm) (master, standby or none), C(sm_type) (opensm or ufm),
    C(sm_hosts), C(ipoib) (interface, link, address, mode; or none) and C(files) (the fabric files bitten renders
    for it).
options:
  host:
    description: the host; defaults to inventory_hostname
    type: str
"""

RETURN = r"""
_raw:
  description: one dict
  type: list
  elements: dict
"""


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        from bitten.fabric.facts import host_facts
        from bitten.playsite import site_from_play
        from bitten.site import SiteError

        self.set_options(var_options=variables, direct=kwargs)
        variables = variables or {}
        host = str(self.get_option("host") or variables.get("inventory_hostname"))
        try:
            return [host_facts(site_from_play(variables), host)]
        except SiteError as exc:
            raise AnsibleLookupError(f"the site description is invalid:\n{exc}") from None
