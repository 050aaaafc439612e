"""Ansible front end: which hosts get a file bitten generates (its FileSpec's hosts, from the site model)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

DOCUMENTATION = r"""
name: bitten_file_hosts
short_description: the hosts that get a file bitten generates from the site model
description:
  - Builds the site model from the play's inventory and returns, for each path, the sorted names of the hosts
    that get the file (the same list C(bitten render) writes it for), e.g. every Slurm host for
    /etc/slurm/slurm.conf, whatever --limit says.
options:
  _terms:
    description: absolute paths of generated files
    required: true
"""

RETURN = r"""
_raw:
  description: one list of host names per term
  type: list
  elements: list
"""


class LookupModule(LookupBase):
    def run(self, terms: list[str], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[list[str]]:
        from bitten.capabilities import FILES, site_from_play
        from bitten.core.files import spec_for
        from bitten.site import SiteError

        self.set_options(var_options=variables, direct=kwargs)
        try:
            site = site_from_play(variables or {})
            return [sorted(spec_for(FILES, str(term)).hosts(site)) for term in terms]
        except SiteError as exc:
            raise AnsibleLookupError(f"the site description is invalid:\n{exc}") from None
        except KeyError as exc:
            raise AnsibleLookupError(str(exc)) from None
