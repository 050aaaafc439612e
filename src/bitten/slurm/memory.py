"""How much memory a job that does not ask for any gets: DefMemPerGPU and DefMemPerCPU per partition.

Without them Slurm gives such a job the whole node's memory (DefMemPerNode is unlimited), so one 1-GPU job without
``--mem`` keeps every other job off an 8-GPU node. The defaults are each node's fair share from its hardware
profile, memory / GPUs and memory / CPUs (Slurm multiplies DefMemPerCPU by the CPUs it allocates, threads
included), taken from the partition's smallest node so that a default job fits on every node of the partition.
A partition's ``def_mem_per_gpu`` / ``def_mem_per_cpu`` (Slurm sizes: 4096, 64G) override them. A job with
GPUs gets DefMemPerGPU per GPU; a job without, DefMemPerCPU per CPU (the same on Slurm 22.05 and 24.11).
``--mem``, ``--mem-per-cpu`` and ``--mem-per-gpu`` still choose for themselves.
"""

from __future__ import annotations

from bitten.site.model import Partition, Site
from bitten.site.model.values import memory_mib


def memory_defaults(part: Partition, site: Site) -> dict[str, int]:
    """{"DefMemPerCPU": MiB, "DefMemPerGPU": MiB} for ``part`` (a key is left out when there is nothing to derive
    it from: DefMemPerGPU on a partition without GPU nodes)."""
    profiles = [p for p in (site.profile_of(host) for host in site.partition_nodes(part)) if p is not None]
    out: dict[str, int] = {}
    per_cpu = (memory_mib(part.def_mem_per_cpu) if part.def_mem_per_cpu
               else min((p.memory_mb // p.cpu.threads for p in profiles), default=None))
    if per_cpu:
        out["DefMemPerCPU"] = per_cpu
    per_gpu = (memory_mib(part.def_mem_per_gpu) if part.def_mem_per_gpu
               else min((p.memory_mb // p.gpu.count for p in profiles if p.gpu), default=None))
    if per_gpu:
        out["DefMemPerGPU"] = per_gpu
    return out
