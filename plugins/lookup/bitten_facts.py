"""Ansible front end of bitten.capabilities.facts: values derived from the validated site model, per capability."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

DOCUMENTATION = r"""
name: bitten_facts
short_description: values the capabilities derive from the validated site model, for one host
description:
  - Builds the site model from the play's inventory (the same validation as C(bitten validate), every problem at
    once) and returns each capability's derived values for the host (its C(CAPABILITY.facts)), by capability name,
    e.g. C(lookup('bitten_facts').provision). Roles read derived values from here and never restate them. Fails,
    naming every problem, when the site is invalid.
options:
  host:
    description: the host to derive for; defaults to inventory_hostname
    type: str
"""

RETURN = r"""
_raw:
  description: one mapping, capability name -> its derived values
  type: list
  elements: dict
"""


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        from bitten.capabilities import facts, site_from_play
        from bitten.site import SiteError

        self.set_options(var_options=variables, direct=kwargs)
        variables = variables or {}
        host = self.get_option("host") or variables.get("inventory_hostname")
        try:
            site = site_from_play(variables)
        except SiteError as exc:
            raise AnsibleLookupError(f"the site description is invalid; nothing was changed:\n{exc}") from None
        return [facts(site, str(host))]
