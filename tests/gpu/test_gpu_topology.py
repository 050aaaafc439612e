from __future__ import annotations

import pytest
from gpu_fixtures import fixture_text

from bitten.gpu.topology import TopologyParseError, parse_topology


def test_hgx_b200_matrix() -> None:
    topo = parse_topology(fixture_text("topo-b200x8.txt"))
    assert topo.gpus == tuple(f"GPU{i}" for i in range(8))
    assert topo.nics == tuple(f"NIC{i}" for i in range(8))
    assert topo.nvlinks("GPU0", "GPU7") == 18
    assert topo.link("GPU0", "NIC0") == "PXB"
    assert topo.nvlinks("GPU0", "NIC0") == 0
    assert topo.cpu_affinity["GPU4"] == "64-127,192-255"
    assert topo.numa_affinity["GPU4"] == "1"
    assert topo.nic_names["NIC3"] == "mlx5_3"
    assert topo.weak_pairs(18) == []


def test_gpu_without_nvlink_shows_in_every_pair() -> None:
    topo = parse_topology(fixture_text("topo-b200x8-gpu6-nvlink-down.txt"))
    weak = topo.weak_pairs(1)
    assert len(weak) == 7
    assert all("GPU6" in (a, b) for a, b, _ in weak)
    assert ("GPU0", "GPU6", "SYS") in weak


def test_terminal_output_and_empty_affinity() -> None:
    text = ("\t\x1b[4mGPU0\tGPU1\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID\x1b[0m\n"
            "GPU0\t X \tNV12\t0-31\t0\t\tN/A\n"
            "GPU1\tNV12\t X \t\t1\t\tN/A\n\nLegend:\n\n  X    = Self\n")
    topo = parse_topology(text)
    assert topo.nvlinks("GPU1", "GPU0") == 12
    assert topo.cpu_affinity["GPU1"] == ""
    assert topo.numa_affinity["GPU1"] == "1"


def test_two_gpu_stand_in() -> None:
    topo = parse_topology(fixture_text("topo-b200x2.txt"))
    assert topo.gpus == ("GPU0", "GPU1") and topo.nics == ()
    assert topo.nvlinks("GPU0", "GPU1") == 18


def test_not_a_matrix() -> None:
    with pytest.raises(TopologyParseError, match="GPU0"):
        parse_topology("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")
    with pytest.raises(TopologyParseError, match="GPU1"):
        parse_topology("\tGPU0\tGPU1\tCPU Affinity\nGPU0\t X \tNV4\t0-7\n")
