"""The site model as a running play sees it: built from the play's groups and hostvars."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bitten.site.build import build_site
from bitten.site.inventory import PREFIX, InventoryData
from bitten.site.model import Site

#: sites built in this process, by a digest of the variables they were built from
_cache: dict[int, Site] = {}


def site_from_play(variables: Mapping[str, Any]) -> Site:
    """Build (once per play and process) the Site from ``groups`` and ``hostvars`` of a play's variables."""
    hostvars = variables["hostvars"]
    raw_groups = variables["groups"]
    groups = {name: sorted(hosts) for name, hosts in raw_groups.items()}
    data: dict[str, dict[str, Any]] = {}
    files: dict[str, str] = {}
    for host in groups.get("all", []):
        hv = hostvars[host]
        data[host] = {k: _plain(hv[k]) for k in hv if k.startswith(PREFIX)}
        files[host] = str(hv.get("inventory_file") or "inventory")
    key = hash(repr(sorted((h, sorted(v.items())) for h, v in data.items())) + repr(sorted(groups.items())))
    if key not in _cache:
        first = groups["all"][0] if groups.get("all") else ""
        _cache[key] = build_site(InventoryData(groups=groups, hostvars=data, host_files=files,
                                               sources=(files.get(first, "inventory"),)))
    return _cache[key]


def _plain(value: Any) -> Any:
    """Plain dicts and lists, keeping Ansible's origin tags (for file:line in messages).

    A play's variables may be ansible-core 2.19 lazy containers, which resolve their items when Python iterates
    them but hold unresolved wrappers that pydantic, reading the list directly, would see.
    """
    if isinstance(value, Mapping):
        out: Any = {key: _plain(item) for key, item in value.items()}
    elif isinstance(value, list | tuple):
        out = [_plain(item) for item in value]
    else:
        return value
    try:
        from ansible.module_utils._internal._datatag import AnsibleTagHelper
    except ImportError:  # pragma: no cover - older ansible-core
        return out
    return AnsibleTagHelper.tag_copy(value, out)
