"""The fabric capability: its cross-checks, the files rendered from bitten_fabric (Slurm's topology.conf, OpenSM's
configuration, IPoIB) and the facts the fabric role reads."""

from __future__ import annotations

from typing import Any

from bitten.core.capability import Capability
from bitten.core.files import FileSpec
from bitten.fabric.checks import check_fabric
from bitten.fabric.facts import host_facts
from bitten.site.model import Site


def _topology_hosts(site: Site) -> list[str]:
    fabric = site.fabric
    return site.slurm_hosts if fabric is not None and fabric.slurm.plugin != "none" else []


def opensm_hosts(site: Site) -> list[str]:
    fabric = site.fabric
    if fabric is None or fabric.subnet_manager.type != "opensm":
        return []
    return sorted(fabric.subnet_manager.hosts)


def _opensm_root_hosts(site: Site) -> list[str]:
    fabric = site.fabric
    if fabric is None or fabric.subnet_manager.routing_engine not in ("ftree", "updn") or not fabric.spine_leaves:
        return []
    return opensm_hosts(site)


def ipoib_hosts(site: Site) -> list[str]:
    fabric = site.fabric
    if fabric is None or fabric.ipoib is None:
        return []
    hca = fabric.ipoib.hca
    return [h for h in fabric.nodes if h in site.nodes and any(p.hca == hca and p.port == 1
                                                                  for p in fabric.ports_of(h))]


def _ipoib_variant(site: Site, host: str) -> str | None:
    """The parent interface of a partitioned IPoIB carries no address: the same file on every host."""
    fabric = site.fabric
    return None if fabric is not None and fabric.ipoib is not None and fabric.ipoib.partition else host


def _ipoib_pkey_hosts(site: Site) -> list[str]:
    fabric = site.fabric
    return ipoib_hosts(site) if fabric is not None and fabric.ipoib and fabric.ipoib.partition else []


FILES = (
    FileSpec("/etc/slurm/topology.conf", _topology_hosts, "fabric/topology.conf.j2",
             description="the fabric's leaf and spine switches for Slurm (TopologyPlugin)"),
    FileSpec("/etc/opensm/opensm.conf", opensm_hosts, "fabric/opensm.conf.j2", per_host=True,
             description="OpenSM: routing engine, SM priority of the master/standby pair"),
    FileSpec("/etc/opensm/partitions.conf", opensm_hosts, "fabric/partitions.conf.j2",
             description="OpenSM: partitions (P_Keys) per tenant, members by port GUID"),
    FileSpec("/etc/opensm/root-guids.conf", _opensm_root_hosts, "fabric/root-guids.conf.j2",
             description="OpenSM: the fat tree's root (spine) switches"),
    FileSpec("/etc/default/opensm", opensm_hosts, "fabric/default-opensm.j2", per_host=True,
             description="the port(s) Debian's opensm.service starts OpenSM on"),
    FileSpec("/etc/systemd/network/60-bitten-ipoib.network", ipoib_hosts, "fabric/ipoib.network.j2",
             per_host=True, variant=_ipoib_variant, description="IPoIB interface (systemd-networkd)"),
    FileSpec("/etc/systemd/network/60-bitten-ipoib-pkey.netdev", _ipoib_pkey_hosts, "fabric/ipoib-pkey.netdev.j2",
             description="IPoIB child interface in the tenant partition"),
    FileSpec("/etc/systemd/network/61-bitten-ipoib-pkey.network", _ipoib_pkey_hosts, "fabric/ipoib-pkey.network.j2",
             per_host=True, description="IPoIB address in the tenant partition"),
)


def _facts(site: Site, host: str) -> dict[str, Any]:
    return host_facts(site, host, FILES)


CAPABILITY = Capability(name="fabric", checks=(check_fabric,), files=FILES, facts=_facts)
