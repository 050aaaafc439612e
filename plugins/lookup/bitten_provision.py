"""Ansible front end of bitten.provision: what the provisioner serves, from the validated site model."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

DOCUMENTATION = r"""
name: bitten_provision
short_description: the provisioner, its nodes and their images, from the validated site model
description:
  - Builds the site model from the play's inventory (the same validation as C(bitten validate), every problem at
    once) and returns what the provisioner role needs. Fails, naming every problem, when the site is invalid, so
    that nothing is served from a wrong description.
options: {}
"""

RETURN = r"""
_raw:
  description: >-
    one mapping: provisioner (host), http_base (URL the nodes use), http_root, tftp_root, state_dir, nodes
    (name -> mac, ip, image, image_id, deploy, disk, boot_script), images (name -> id, hash, recipe), overlay_files
  type: list
  elements: dict
"""


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        from bitten.playsite import site_from_play
        from bitten.provision.facts import provisioner_facts
        from bitten.site import SiteError

        try:
            site = site_from_play(variables or {})
        except SiteError as exc:
            raise AnsibleLookupError(f"the site description is invalid; nothing was served:\n{exc}") from None
        return [provisioner_facts(site)]
