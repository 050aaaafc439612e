"""Ansible front end: the files of bitten.provision.service, which the provisioner role installs as bitten_provision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.plugins.lookup import LookupBase

DOCUMENTATION = r"""
name: bitten_provision_package
short_description: paths of the bitten.provision.service modules on the controller
description:
  - Returns the absolute paths of the Python modules of bitten.provision.service (standard library only, relative
    imports), which the provisioner role copies to the provisioner so bitten-provision runs without the project's
    venv.
"""

RETURN = r"""
_raw:
  description: absolute paths of the package's .py files, sorted
  type: list
  elements: str
"""


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[str]:
        import bitten.provision.service

        return sorted(str(p) for p in Path(bitten.provision.service.__file__).parent.glob("*.py"))
