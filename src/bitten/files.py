"""The registry of generated files: which path each host gets, from which template, with which mode.

Every file a role deploys from the site model is listed here, so `bitten render` shows all of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bitten.site.model import GROUP_UCLOUD, Site

#: a Python render function: (site, host or None, item or None) -> content
RenderFunction = Callable[[Site, str | None, str | None], str]
ITEM = "{item}"


@dataclass(frozen=True)
class FileSpec:
    #: absolute path on the host; with ``items``, it contains {item} (one file per item, e.g. per booted node)
    path: str
    #: template under templates/ (or None with ``render``)
    template: str | None
    #: which hosts get the file
    hosts: Callable[[Site], list[str]]
    #: False when the content is the same on every host that gets it (rendered once)
    per_host: bool = False
    mode: str = "0644"
    owner: str = "root"
    group: str = "root"
    description: str = ""
    #: one file per item on each host (the template sees ``item``), e.g. a boot script per provisioned node
    items: Callable[[Site], list[str]] | None = None
    #: a Python function that renders the content instead of a template
    render: RenderFunction | None = None

    def paths(self, site: Site) -> Iterator[tuple[str, str | None]]:
        """(path, item) of every file of this spec on one host."""
        if self.items is None:
            yield self.path, None
            return
        for item in self.items(site):
            yield self.path.replace(ITEM, item), item

    def match(self, path: str) -> tuple[bool, str | None]:
        """Does ``path`` belong to this spec, and for which item."""
        if self.items is None:
            return path == self.path, None
        before, _, after = self.path.partition(ITEM)
        found = re.fullmatch(re.escape(before) + r"([A-Za-z0-9_.-]+)" + re.escape(after), path)
        return (found is not None), (found.group(1) if found else None)


def _all_hosts(site: Site) -> list[str]:
    return sorted(site.nodes)


def _slurm_hosts(site: Site) -> list[str]:
    return site.slurm_hosts


def _dbd_hosts(site: Site) -> list[str]:
    return site.dbd_hosts


def _ucloud_frontends(site: Site) -> list[str]:
    return site.hosts_in(GROUP_UCLOUD) if site.ucloud is not None else []


def _compute_hosts(site: Site) -> list[str]:
    return site.compute_nodes


def _cooling_agent_hosts(site: Site) -> list[str]:
    return site.cooling_agent_hosts


FILES: list[FileSpec] = [
    FileSpec("/etc/hosts", "os/hosts.j2", _all_hosts, description="every host of the site, from the inventory"),
    FileSpec("/etc/slurm/slurm.conf", "slurm/slurm.conf.j2", _slurm_hosts, description="Slurm cluster config"),
    FileSpec("/etc/slurm/gres.conf", "slurm/gres.conf.j2", _slurm_hosts, description="GPUs per node"),
    FileSpec("/etc/slurm/cgroup.conf", "slurm/cgroup.conf.j2", _slurm_hosts, description="cgroup limits"),
    FileSpec("/etc/slurm/slurmdbd.conf", "slurm/slurmdbd.conf.j2", _dbd_hosts, mode="0600", owner="slurm",
             group="slurm", description="accounting daemon; StoragePass is a secret (placeholder in render)"),
    # UCloud Integration Module: config.yml is read by every user's IM instance, so it is world-readable
    FileSpec("/etc/ucloud/config.yml", "ucloud/config.yml.j2", _ucloud_frontends, mode="0644", owner="ucloud",
             group="ucloud", description="UCloud IM: provider, Slurm machine types, file systems"),
    FileSpec("/etc/ucloud/server.yml", "ucloud/server.yml.j2", _ucloud_frontends, mode="0600", owner="ucloud",
             group="ucloud", description="UCloud IM: refresh token and database (secrets)"),
    FileSpec("/etc/ucloud/secrets.yml", "ucloud/secrets.yml.j2", _ucloud_frontends, mode="0600", owner="ucloud",
             group="ucloud", description="UCloud IM: identity-management secrets"),
    FileSpec("/etc/bitten/gpu-node.json", "gpu/gpu-node.json.j2", _compute_hosts, per_host=True,
             description="the GPUs a node's hardware profile promises; bitten-gpu-health checks against it"),
    FileSpec("/etc/bitten/cooling/agent.yaml", "cooling/agent.yaml.j2", _cooling_agent_hosts, mode="0640",
             group="bitten-cooling", description="cooling agent: CDUs, meters, register maps, loops, ledger"),
]


def spec_for(path: str) -> tuple[FileSpec, str | None]:
    """The spec of a generated file's path, and its item (for specs with items)."""
    for spec in FILES:
        matched, item = spec.match(path)
        if matched:
            return spec, item
    raise KeyError(f"bitten generates no file {path}; known: {', '.join(s.path for s in FILES)}")


def _register_capabilities() -> None:
    from bitten.provision.files import FILES as PROVISION_FILES

    FILES.extend(PROVISION_FILES)


_register_capabilities()
