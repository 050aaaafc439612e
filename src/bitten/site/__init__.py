"""The site: one declarative description (an Ansible inventory), validated into a typed model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bitten.site.build import build_site
from bitten.site.inventory import InventoryData, load_inventory
from bitten.site.model import Site
from bitten.site.problems import EXIT_INVALID, Problem, SiteError

__all__ = ["EXIT_INVALID", "InventoryData", "Problem", "Site", "SiteError", "build_site", "load_inventory",
           "load_site"]


def load_site(sources: str | Path | Sequence[str | Path], vault_password_file: str | None = None) -> Site:
    """Load and validate a site from inventory path(s); raises SiteError listing every problem."""
    paths = [sources] if isinstance(sources, str | Path) else list(sources)
    return build_site(load_inventory(paths, vault_password_file=vault_password_file))
