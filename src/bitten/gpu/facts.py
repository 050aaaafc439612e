"""What the gpu role needs from the site model (lookup ``bitten_facts``, 'gpu'): the GPUs a node's hardware
profile promises and whether slurmd autodetects them with NVML. Not part of the node-side package."""

from __future__ import annotations

from typing import Any

from bitten.site.model import Site


def facts(site: Site, host: str) -> dict[str, Any]:
    profile = site.profile_of(host)
    gpu = profile.gpu if profile is not None else None
    return {
        "hardware_profile": site.nodes[host].hardware_profile,
        #: the profile's GPUs (None: the profile has none)
        "gpu": gpu.model_dump() if gpu is not None else None,
        "nvswitch": bool(gpu and gpu.nvswitch),
        #: gres.conf says AutoDetect=nvml: slurmd needs its NVML plugin
        "nvml": site.slurm.gres_autodetect == "nvml",
        "compute": host in site.compute_nodes,
        #: container jobs on this node (bitten_slurm.containers)
        "containers": {"enabled": site.slurm.containers.enabled and host in site.compute_nodes,
                       "pyxis_plugin": site.slurm.containers.pyxis_plugin},
    }
