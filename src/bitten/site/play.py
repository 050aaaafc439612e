"""The site model as a running play sees it: built from the play's groups and hostvars."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bitten.site.build import build_site
from bitten.site.checks import Check
from bitten.site.inventory import PREFIX, InventoryData
from bitten.site.model import Site

#: sites built in this process, by a digest of the variables they were built from
_cache: dict[int, Site] = {}


def site_from_play(variables: Mapping[str, Any], checks: Sequence[Check] = ()) -> Site:
    """Build (once per play and process) the Site from ``groups`` and ``hostvars`` of a play's variables."""
    hostvars = variables["hostvars"]
    raw_groups = variables["groups"]
    groups = {name: sorted(hosts) for name, hosts in raw_groups.items()}
    data: dict[str, dict[str, Any]] = {}
    files: dict[str, str] = {}
    for host in groups.get("all", []):
        hv = hostvars[host]
        data[host] = {k: _resolved(hv[k]) for k in hv if k.startswith(PREFIX)}
        files[host] = str(hv.get("inventory_file") or "inventory")
    key = hash((repr(sorted((h, sorted(v.items())) for h, v in data.items())) + repr(sorted(groups.items())),
                tuple(checks)))
    if key not in _cache:
        first = groups["all"][0] if groups.get("all") else ""
        _cache[key] = build_site(InventoryData(groups=groups, hostvars=data, host_files=files,
                                               sources=(files.get(first, "inventory"),)), checks)
    return _cache[key]


def _resolved(value: Any) -> Any:
    """A variable's value with plain containers whose items are all resolved.

    ansible-core 2.19 hands a play lazily templated lists and dicts; read at C level (as pydantic does) their
    items can still be unresolved _LazyValue wrappers. Iterating them in Python resolves each item. The origin
    tags of the containers (file and line, for error messages) are copied onto the new ones.
    """
    if isinstance(value, Mapping):
        out: Any = {key: _resolved(item) for key, item in value.items()}
    elif isinstance(value, list | tuple):
        out = [_resolved(item) for item in value]
    else:
        return value
    try:
        from ansible.module_utils._internal._datatag import AnsibleTagHelper
    except ImportError:  # pragma: no cover - older ansible-core
        return out
    return AnsibleTagHelper.tag_copy(value, out)
