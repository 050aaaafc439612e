"""What the fabric means for one host, for the fabric role (the lookup bitten_facts): whether it is on the
fabric, its HCAs, its subnet-manager role, its IPoIB interface and the fabric files it gets.

The role reads these (lookup bitten_facts, key "fabric") instead of restating the model's rules (which hosts run
OpenSM, which get IPoIB). ``files`` are the fabric role's files; topology.conf is the slurm role's to deploy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bitten.core.files import FileSpec
from bitten.site.model import Site


def host_facts(site: Site, host: str, files: Sequence[FileSpec]) -> dict[str, Any]:
    """The fabric facts of ``host``; ``files`` are the fabric capability's FileSpecs."""
    fabric = site.fabric
    if fabric is None:
        return {"defined": False, "on_fabric": False, "hcas": [], "sm": None, "sm_type": None, "ipoib": None,
                "files": []}
    ports = fabric.ports_of(host)
    sm = fabric.subnet_manager
    role = None
    if sm.type == "opensm" and host in sm.hosts:
        role = "master" if sm.hosts.index(host) == 0 else "standby"
    paths = [spec.path for spec in files if spec.path != "/etc/slurm/topology.conf" and host in spec.hosts(site)]
    ipoib = None
    if fabric.ipoib is not None and any(p.hca == fabric.ipoib.hca and p.port == 1 for p in ports):
        ipoib = {"interface": fabric.ipoib.interface, "link": fabric.ipoib_link,
                 "address": str(fabric.ipoib.address_for(site.nodes[host].ip)), "mode": fabric.ipoib.mode}
    return {
        "defined": True,
        "name": fabric.name,
        "on_fabric": bool(ports),
        "hcas": sorted({p.hca for p in ports}),
        "sm": role,
        "sm_type": sm.type,
        "sm_hosts": list(sm.hosts),
        "ipoib": ipoib,
        "files": paths,
    }
