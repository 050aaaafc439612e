"""DefMemPerGPU and DefMemPerCPU per partition, from the hardware profiles (bitten.slurm.memory), in slurm.conf."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from bitten.capabilities import load_site, render_file
from bitten.site.model import Site
from bitten.slurm.memory import memory_defaults

from conftest import BROKEN, INVENTORIES


def _site(tmp_path: Path, partitions: list[dict[str, object]] | None = None, small_gpu: bool = False) -> Site:
    inv = tmp_path / "inv"
    shutil.copytree(BROKEN / "_base", inv)
    path = inv / "group_vars" / "all" / "site.yml"
    data = yaml.safe_load(path.read_text())
    if small_gpu:
        # a second GPU model in the same partition: 4 GPUs, 49152 MiB
        data["bitten_hardware_profiles"]["gpu-small"] = {
            "model": "XD670", "cpu": {"model": "EPYC", "sockets": 1, "cores_per_socket": 8}, "memory_mb": 49152,
            "gpu": {"model": "H100", "slurm_type": "b200", "count": 4, "architecture": "hopper", "memory_gb": 80}}
        (inv / "host_vars").mkdir()
        (inv / "host_vars" / "gpu02.yml").write_text("bitten_hardware_profile: gpu-small\n")
    if partitions is not None:
        for part, extra in zip(data["bitten_partitions"], partitions, strict=True):
            part.update(extra)
    path.write_text(yaml.safe_dump(data))
    return load_site(inv)


def test_each_nodes_share_of_the_partitions_smallest_node(tmp_path: Path) -> None:
    site = _site(tmp_path, small_gpu=True)
    gpu, cpu = site.partitions
    # gpu01: 65536 MiB / 8 GPUs = 8192, / 16 CPUs = 4096; gpu02: 49152 / 4 = 12288, / 8 = 6144
    assert memory_defaults(gpu, site) == {"DefMemPerCPU": 4096, "DefMemPerGPU": 8192}
    # no GPUs, no DefMemPerGPU
    assert memory_defaults(cpu, site) == {"DefMemPerCPU": 4096}


def test_a_partition_overrides_them(tmp_path: Path) -> None:
    site = _site(tmp_path, [{"def_mem_per_gpu": 4000}, {"def_mem_per_cpu": "2G"}])
    gpu, cpu = site.partitions
    assert memory_defaults(gpu, site) == {"DefMemPerCPU": 4096, "DefMemPerGPU": 4000}
    assert memory_defaults(cpu, site) == {"DefMemPerCPU": 2048}
    lines = render_file(site, "/etc/slurm/slurm.conf", "ctl").splitlines()
    assert any(line.startswith("PartitionName=gpu ") and " DefMemPerCPU=4096 DefMemPerGPU=4000 State=UP" in line
               for line in lines)
    assert any(line.startswith("PartitionName=cpu ") and line.endswith(" DefMemPerCPU=2048 State=UP")
               for line in lines)


def test_the_reference_site_keeps_seven_gpus_usable_beside_a_one_gpu_job() -> None:
    site = load_site(INVENTORIES / "bitten")
    conf = render_file(site, "/etc/slurm/slurm.conf", site.controllers[0])
    part = next(line for line in conf.splitlines() if line.startswith("PartitionName=gpu "))
    # XD685: 2252800 MiB for 8 B200 and 128 cores
    assert "DefMemPerCPU=17600 DefMemPerGPU=281600" in part
