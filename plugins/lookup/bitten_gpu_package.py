"""Ansible front end: the files of bitten.gpu, which the gpu role installs on compute nodes as bitten_gpu."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.plugins.lookup import LookupBase

DOCUMENTATION = r"""
name: bitten_gpu_package
short_description: paths of the bitten.gpu modules on the controller
description:
  - Returns the absolute paths of the Python modules of bitten.gpu (standard library only, relative imports),
    which the gpu role copies to compute nodes so bitten-gpu-health runs without the project's venv.
"""

RETURN = r"""
_raw:
  description: absolute paths of the package's .py files, sorted
  type: list
  elements: str
"""


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[str]:
        import bitten.gpu

        return sorted(str(Path(bitten.gpu.__file__).parent / name) for name in bitten.gpu.NODE_MODULES)
