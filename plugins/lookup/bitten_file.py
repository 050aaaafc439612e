"""Ansible front end of bitten.capabilities.render_file: the content of a file bitten generates for a host."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

DOCUMENTATION = r"""
name: bitten_file
short_description: content of a file that bitten generates from the site model
description:
  - Builds the site model from the play's inventory (groups and hostvars, so exactly what the play sees) and
    renders the file at each given path for one host, with the same templates and filters as C(bitten render).
options:
  _terms:
    description: absolute paths of generated files, e.g. /etc/slurm/slurm.conf
    required: true
  host:
    description: the host to render for; defaults to inventory_hostname
    type: str
  secrets:
    description: values for the secrets the template needs (from vault); without them placeholders are rendered
    type: dict
"""

RETURN = r"""
_raw:
  description: file contents, one per term
  type: list
  elements: str
"""


class LookupModule(LookupBase):
    def run(self, terms: list[str], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[str]:
        from bitten.capabilities import render_file, site_from_play
        from bitten.site import SiteError

        self.set_options(var_options=variables, direct=kwargs)
        variables = variables or {}
        host = self.get_option("host") or variables.get("inventory_hostname")
        secrets = self.get_option("secrets")
        try:
            site = site_from_play(variables)
            return [render_file(site, str(term), str(host), secrets) for term in terms]
        except SiteError as exc:
            raise AnsibleLookupError(f"the site description is invalid:\n{exc}") from None
        except KeyError as exc:
            raise AnsibleLookupError(str(exc)) from None
