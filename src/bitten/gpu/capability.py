"""The GPU capability: each compute node's GPU promise, which bitten-gpu-health checks against.

Not part of the node-side package (it imports the site model): bitten.gpu.NODE_MODULES lists what the gpu role
copies to compute nodes.
"""

from __future__ import annotations

from typing import Any

from bitten.core.capability import Capability
from bitten.core.files import FileSpec
from bitten.site.model import Site


def _compute_hosts(site: Site) -> list[str]:
    return site.compute_nodes


def _profile(site: Site, host: str) -> str | None:
    """The file says what the node's hardware profile promises: the same for every node of a profile."""
    return site.nodes[host].hardware_profile


def _container_hosts(site: Site) -> list[str]:
    return site.compute_nodes if site.slurm.containers.enabled else []


def _facts(site: Site, host: str) -> dict[str, Any]:
    containers = site.slurm.containers
    return {"containers": {"enabled": containers.enabled and host in site.compute_nodes,
                           "pyxis_plugin": containers.pyxis_plugin}}


CAPABILITY = Capability(
    name="gpu",
    facts=_facts,
    files=(
        FileSpec("/etc/bitten/gpu-node.json", _compute_hosts, "gpu/gpu-node.json.j2", per_host=True,
                 variant=_profile,
                 description="the GPUs a node's hardware profile promises; bitten-gpu-health checks against it"),
        FileSpec("/etc/enroot/enroot.conf", _container_hosts, "gpu/enroot.conf.j2",
                 description="enroot: per-user runtime, data and cache directories"),
        FileSpec("/etc/bitten/containers.json", _container_hosts, "gpu/containers.json.j2",
                 description="where the container prolog and epilog find each user's enroot directories"),
    ),
)
