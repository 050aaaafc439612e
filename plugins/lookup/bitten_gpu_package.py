"""Ansible front end: the node-side tree of bitten (bitten.gpu.NODE_MODULES), which the gpu role installs on
compute nodes so bitten-gpu-health runs with the system python and without the project's venv."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.plugins.lookup import LookupBase

DOCUMENTATION = r"""
name: bitten_gpu_package
short_description: the files of bitten's node-side package tree (bitten.gpu and the core modules it uses)
description:
  - Returns one entry per file of bitten.gpu.NODE_MODULES (standard library only), which the gpu role copies to
    compute nodes under its library directory as the package tree bitten/ (bitten/__init__.py,
    bitten/core/scontrol.py, bitten/gpu/check.py, ...).
"""

RETURN = r"""
_raw:
  description: one dict per file, sorted by path
  type: list
  elements: dict
  contains:
    src:
      description: absolute path of the file on the controller
    path:
      description: its path inside the tree, e.g. bitten/core/scontrol.py
    content:
      description: the file's text (the role writes the whole tree in one module run)
"""


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, str]]:
        import bitten
        import bitten.gpu

        root = Path(bitten.__file__).parent
        return [{"src": str(root / name), "path": f"bitten/{name}", "content": (root / name).read_text()}
                for name in sorted(bitten.gpu.NODE_MODULES)]
