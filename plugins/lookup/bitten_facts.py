"""Ansible front end of bitten.capabilities.facts: the values the model derives for a host, by capability."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

DOCUMENTATION = r"""
name: bitten_facts
short_description: derived values of a host, by capability, from the site model
description:
  - Builds the site model from the play's inventory and returns one dict with, for each capability that derives
    values for roles (CAPABILITY.facts), its values for the host, e.g. C(lookup('bitten_facts').fabric.sm). Roles
    read these instead of restating the model's defaults or rules.
options:
  host:
    description: the host; defaults to inventory_hostname
    type: str
"""

RETURN = r"""
_raw:
  description: one dict, capability name -> its facts
  type: list
  elements: dict
"""


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        from bitten.capabilities import facts, site_from_play
        from bitten.site import SiteError

        self.set_options(var_options=variables, direct=kwargs)
        variables = variables or {}
        host = str(self.get_option("host") or variables.get("inventory_hostname"))
        try:
            return [facts(site_from_play(variables), host)]
        except SiteError as exc:
            raise AnsibleLookupError(f"the site description is invalid:\n{exc}") from None
