"""The site: one declarative description (an Ansible inventory), validated into a typed model.

This package validates the site's own shape; the capabilities' cross-checks are composed above it
(bitten.capabilities.load_site is what front ends call).
"""

from __future__ import annotations

from bitten.site.build import build_site
from bitten.site.inventory import InventoryData, load_inventory
from bitten.site.model import Site
from bitten.site.problems import EXIT_INVALID, Problem, SiteError

__all__ = ["EXIT_INVALID", "InventoryData", "Problem", "Site", "SiteError", "build_site", "load_inventory"]
