"""The GPU capability: each compute node's GPU promise, which bitten-gpu-health checks against.

Not part of the node-side package (it imports the site model): bitten.gpu.NODE_MODULES lists what the gpu role
copies to compute nodes.
"""

from __future__ import annotations

from bitten.core.capability import Capability
from bitten.core.files import FileSpec
from bitten.site.model import Site


def _compute_hosts(site: Site) -> list[str]:
    return site.compute_nodes


CAPABILITY = Capability(
    name="gpu",
    files=(
        FileSpec("/etc/bitten/gpu-node.json", _compute_hosts, "gpu/gpu-node.json.j2", per_host=True,
                 description="the GPUs a node's hardware profile promises; bitten-gpu-health checks against it"),
    ),
)
