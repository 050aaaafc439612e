"""The registry of generated files: which path each host gets, from which template, with which mode.

Every file a role deploys from the site model is listed here, so `bitten render` shows all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bitten.site.model import GROUP_UCLOUD, Site


@dataclass(frozen=True)
class FileSpec:
    #: absolute path on the host
    path: str
    #: template under templates/
    template: str
    #: which hosts get the file
    hosts: Callable[[Site], list[str]]
    #: False when the content is the same on every host that gets it (rendered once)
    per_host: bool = False
    mode: str = "0644"
    owner: str = "root"
    group: str = "root"
    description: str = ""


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


# --- the InfiniBand fabric (bitten.fabric) ------------------------------------------------------------------


def _topology_hosts(site: Site) -> list[str]:
    fabric = site.fabric
    return site.slurm_hosts if fabric is not None and fabric.slurm.plugin != "none" else []


def _opensm_hosts(site: Site) -> list[str]:
    fabric = site.fabric
    if fabric is None or fabric.subnet_manager.type != "opensm":
        return []
    return sorted(fabric.subnet_manager.hosts)


def _opensm_root_hosts(site: Site) -> list[str]:
    fabric = site.fabric
    if fabric is None or fabric.subnet_manager.routing_engine not in ("ftree", "updn") or not fabric.spine_leaves:
        return []
    return _opensm_hosts(site)


def _ipoib_hosts(site: Site) -> list[str]:
    fabric = site.fabric
    if fabric is None or fabric.ipoib is None:
        return []
    hca = fabric.ipoib.hca
    return [h for h in fabric.nodes if h in site.nodes and any(p.hca == hca and p.port == 1
                                                                  for p in fabric.ports_of(h))]


def _ipoib_pkey_hosts(site: Site) -> list[str]:
    fabric = site.fabric
    return _ipoib_hosts(site) if fabric is not None and fabric.ipoib and fabric.ipoib.partition else []


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
    FileSpec("/etc/slurm/topology.conf", "slurm/topology.conf.j2", _topology_hosts,
             description="the fabric's leaf and spine switches for Slurm (TopologyPlugin)"),
    FileSpec("/etc/opensm/opensm.conf", "fabric/opensm.conf.j2", _opensm_hosts, per_host=True,
             description="OpenSM: routing engine, SM priority of the master/standby pair"),
    FileSpec("/etc/opensm/partitions.conf", "fabric/partitions.conf.j2", _opensm_hosts,
             description="OpenSM: partitions (P_Keys) per tenant, members by port GUID"),
    FileSpec("/etc/opensm/root-guids.conf", "fabric/root-guids.conf.j2", _opensm_root_hosts,
             description="OpenSM: the fat tree's root (spine) switches"),
    FileSpec("/etc/default/opensm", "fabric/default-opensm.j2", _opensm_hosts, per_host=True,
             description="the port(s) Debian's opensm.service starts OpenSM on"),
    FileSpec("/etc/systemd/network/60-bitten-ipoib.network", "fabric/ipoib.network.j2", _ipoib_hosts, per_host=True,
             description="IPoIB interface (systemd-networkd)"),
    FileSpec("/etc/systemd/network/60-bitten-ipoib-pkey.netdev", "fabric/ipoib-pkey.netdev.j2", _ipoib_pkey_hosts,
             description="IPoIB child interface in the tenant partition"),
    FileSpec("/etc/systemd/network/61-bitten-ipoib-pkey.network", "fabric/ipoib-pkey.network.j2", _ipoib_pkey_hosts,
             per_host=True, description="IPoIB address in the tenant partition"),
    FileSpec("/etc/bitten/cooling/agent.yaml", "cooling/agent.yaml.j2", _cooling_agent_hosts, mode="0640",
             group="bitten-cooling", description="cooling agent: CDUs, meters, register maps, loops, ledger"),
]


def spec_for(path: str) -> FileSpec:
    for spec in FILES:
        if spec.path == path:
            return spec
    raise KeyError(f"bitten generates no file {path}; known: {', '.join(s.path for s in FILES)}")
