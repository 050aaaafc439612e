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

_BY_NAME: dict[str, Capability] = {cap.name: cap for cap in CAPABILITIES}
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


def facts(site: Site, host: str, names: Sequence[str] = ()) -> dict[str, Any]:
    """Derived values for ``host``, by capability name (the lookup bitten_facts)."""
    return facts_for(site, [host], names)[host]


def facts_for(site: Site, hosts: Sequence[str], names: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """Derived values for each of ``hosts`` (all capabilities, or those ``names`` gives), computed in one pass.

    Every capability's facts include ``files``: the paths of its generated files the host gets, unless it says
    itself; review-only files, such as the sacctmgr commands, are for `bitten render` and no role writes them.
    """
    unknown = [name for name in names if name not in _BY_NAME]
    if unknown:
        raise KeyError(f"no capability named {', '.join(unknown)}; known: {', '.join(_BY_NAME)}")
    missing = [host for host in hosts if host not in site.nodes]
    if missing:
        raise KeyError(f"host(s) {', '.join(missing)} not in the site {site.info.name}")
    chosen = [_BY_NAME[name] for name in names] if names else list(CAPABILITIES)
    receivers = {id(spec): set(spec.hosts(site)) for cap in chosen for spec in cap.files}
    out: dict[str, dict[str, Any]] = {}
    for host in hosts:
        per_cap: dict[str, Any] = {}
        for cap in chosen:
            values = dict(cap.facts(site, host)) if cap.facts is not None else {}
            # a capability whose files another role writes (the fabric's topology.conf: the slurm role) says
            # which of them its own role writes
            values.setdefault("files", [spec.path for spec in cap.files
                                        if host in receivers[id(spec)] and not spec.review_only])
            per_cap[cap.name] = values
        out[host] = per_cap
    return out


def render_file(site: Site, path: str, host: str, secrets: Mapping[str, str] | None = None) -> str:
    return _files.render_file(FILES, site, path, host, secrets)


def render_for(site: Site, path: str, hosts: Sequence[str], secrets: Mapping[str, str] | None = None,
               ) -> dict[str, str]:
    """The content each of ``hosts`` that gets ``path`` gets (a file the same on every host is rendered once)."""
    return _files.render_for(FILES, site, path, hosts, secrets)


def render_tree(site: Site, out: Path, progress: Any = None) -> RenderResult:
    return _files.render_tree(FILES, site, out, progress)
