"""The composition: every capability of bitten, and the site as all of them see it.

This is the one module that knows the list of capabilities. It composes their cross-checks (run after the site's
own checks by every front end before anything acts), their generated files (what `bitten render` writes and the
roles deploy), their derived values for roles, and their template filters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bitten.base.capability import CAPABILITY as BASE
from bitten.cooling.capability import CAPABILITY as COOLING
from bitten.core import files as _files
from bitten.core import templating
from bitten.core.capability import Capability
from bitten.core.files import FileSpec, RenderResult
from bitten.energy.capability import CAPABILITY as ENERGY
from bitten.fabric.capability import CAPABILITY as FABRIC
from bitten.gpu.capability import CAPABILITY as GPU
from bitten.hardware.capability import CAPABILITY as HARDWARE
from bitten.provision.capability import CAPABILITY as PROVISION
from bitten.site import InventoryData, Site, load_inventory
from bitten.site import build_site as _build_site
from bitten.site import play as _play
from bitten.site.checks import Check
from bitten.slurm.capability import CAPABILITY as SLURM
from bitten.ucloud.capability import CAPABILITY as UCLOUD

#: in the order their files appear in `bitten render` and their checks run
CAPABILITIES: tuple[Capability, ...] = (BASE, HARDWARE, PROVISION, SLURM, FABRIC, GPU, UCLOUD, COOLING, ENERGY)

CHECKS: tuple[Check, ...] = tuple(check for cap in CAPABILITIES for check in cap.checks)
FILES: tuple[FileSpec, ...] = tuple(spec for cap in CAPABILITIES for spec in cap.files)
_CAPABILITY_FILTERS = {name: fn for cap in CAPABILITIES for name, fn in cap.filters.items()}
templating.use_filters(_CAPABILITY_FILTERS)
#: every filter templates may use (generic and the capabilities'); roles get them as bitten_<name>
FILTERS: dict[str, Any] = {**templating.FILTERS, **_CAPABILITY_FILTERS}


def build_site(data: InventoryData) -> Site:
    """Validate inventory data with the site's own checks and every capability's cross-checks."""
    return _build_site(data, CHECKS)


def load_site(sources: str | Path | Sequence[str | Path], vault_password_file: str | None = None) -> Site:
    """Load and validate a site from inventory path(s); raises SiteError listing every problem."""
    paths = [sources] if isinstance(sources, str | Path) else list(sources)
    return build_site(load_inventory(paths, vault_password_file=vault_password_file))


def site_from_play(variables: Mapping[str, Any]) -> Site:
    """The validated site from a running play's groups and hostvars (once per play and process)."""
    return _play.site_from_play(variables, CHECKS)


def facts(site: Site, host: str) -> dict[str, Any]:
    """Derived values for ``host``, by capability name (the lookup bitten_facts)."""
    return {cap.name: dict(cap.facts(site, host)) for cap in CAPABILITIES if cap.facts is not None}


def render_file(site: Site, path: str, host: str, secrets: Mapping[str, str] | None = None) -> str:
    return _files.render_file(FILES, site, path, host, secrets)


def render_tree(site: Site, out: Path, progress: Any = None) -> RenderResult:
    return _files.render_tree(FILES, site, out, progress)
