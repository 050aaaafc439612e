"""Ansible front end of bitten.capabilities.facts: the values roles derive from the site model."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

DOCUMENTATION = r"""
name: bitten_facts
short_description: values derived from the validated site model for a host (or for many hosts at once)
description:
  - Builds the site model from the play's inventory (groups and hostvars, so exactly what the play sees; every
    problem of the site at once when it is invalid) and returns what each capability derives for a host, e.g.
    slurm (controllers, accounting host, the host's daemons, the database), base (time zone), gpu (the profile's
    GPUs, NVML), ucloud (frontends, database, hook scripts), cooling (agent hosts, state directory), hardware
    (BMC and desired BMC state). Every capability's values include C(files), the paths of its generated files
    the host gets.
  - Roles call it once per play (C(run_once) with C(hosts=ansible_play_hosts_all)) instead of restating the
    model's defaults and rules.
options:
  _terms:
    description: capability names (e.g. slurm); none gives every capability
    required: false
  host:
    description: the host to derive for; defaults to inventory_hostname
    type: str
  hosts:
    description: derive for each of these hosts in one pass; the result is then a mapping host -> values
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Read what the site model says about Slurm, for every host of the play at once
  ansible.builtin.set_fact:
    slurm__facts_by_host: "{{ lookup('bitten_facts', 'slurm', hosts=ansible_play_hosts_all) }}"
  run_once: true
"""

RETURN = r"""
_raw:
  description: >-
    one mapping: with one term, that capability's values; with none or several, capability -> values; with
    hosts, host -> that
  type: list
  elements: dict
"""


class LookupModule(LookupBase):
    def run(self, terms: list[str], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[Any]:
        from bitten.capabilities import facts_for, site_from_play
        from bitten.site import SiteError

        self.set_options(var_options=variables, direct=kwargs)
        variables = variables or {}
        names = [str(term) for term in terms]
        hosts = self.get_option("hosts")
        chosen = [str(h) for h in hosts] if hosts is not None else [
            str(self.get_option("host") or variables.get("inventory_hostname"))]
        try:
            site = site_from_play(variables)
            found = facts_for(site, chosen, names)
        except SiteError as exc:
            raise AnsibleLookupError(f"the site description is invalid:\n{exc}") from None
        except KeyError as exc:
            raise AnsibleLookupError(str(exc.args[0])) from None
        shaped = {host: (values[names[0]] if len(names) == 1 else values) for host, values in found.items()}
        return [shaped if hosts is not None else shaped[chosen[0]]]
