"""Cross-checks of bitten_fabric: every problem names the field and says how to fix it."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fabric_site import FABRIC, site_with

from bitten.site import SiteError


def problems(**changes: Any) -> list[str]:
    with pytest.raises(SiteError) as info:
        site_with(**changes)
    return [str(p) for p in info.value.problems]


def cables(*extra: dict[str, Any], drop: str | None = None) -> list[dict[str, Any]]:
    out = [c for c in copy.deepcopy(FABRIC["cables"]) if c["node"] != drop]
    return [*out, *extra]


def test_the_base_fabric_is_valid() -> None:
    site = site_with()
    assert site.fabric is not None and len(site.fabric.node_ports) == 7


def test_an_hca_port_cabled_twice() -> None:
    found = problems(cables=cables({"node": "gpu01", "hca": "mlx5_1", "switch": "leaf2", "switch_port": 9}))
    assert any("gpu01 mlx5_1 port 1 is cabled twice" in p and "bitten_fabric.cables[4]" in p for p in found)


def test_a_switch_port_beyond_the_model() -> None:
    found = problems(cables=cables({"node": "dbd", "switch": "leaf2", "switch_port": 65}, drop="dbd"))
    assert any("leaf2 has ports 1-64 (QM9700); dbd mlx5_0 is cabled to port 65" in p for p in found)


def test_a_trunk_port_used_by_a_node_too() -> None:
    found = problems(cables=cables({"node": "dbd", "switch": "leaf2", "switch_port": 33}, drop="dbd"))
    assert any("switch leaf2 port 33 is used twice: dbd mlx5_0" in p and "spine1 port 3" in p for p in found)


def test_an_unknown_host_in_the_cabling_plan() -> None:
    found = problems(cables=cables({"node": "gpu09", "switch": "leaf1", "switch_port": 20}))
    assert any("bitten_fabric.cables[4].node: host 'gpu09' is not in the inventory" in p for p in found)


def test_unknown_switches_in_trunks() -> None:
    found = problems(trunks=[{"switch": "leaf1", "ports": 33, "peer": "spine9", "peer_ports": 1}])
    assert any("bitten_fabric.trunks[0].peer: unknown switch 'spine9'" in p for p in found)


def test_duplicate_guids() -> None:
    switches = copy.deepcopy(FABRIC["switches"])
    switches["leaf2"]["guid"] = switches["leaf1"]["guid"]
    found = problems(switches=switches)
    assert any("GUID 0xb83fd20300000001 is used by switch leaf1, switch leaf2" in p for p in found)


def test_the_subnet_manager_must_be_on_the_fabric() -> None:
    found = problems(subnet_manager={"type": "opensm", "hosts": ["ctl", "login1"]})
    assert any("host login1" in p and "subnet manager host has no cable" in p for p in found)


def test_a_ufm_fabric_needs_no_sm_host() -> None:
    site = site_with(subnet_manager={"type": "ufm", "ufm_address": "10.3.0.100"})
    assert site.fabric is not None and site.fabric.subnet_manager.hosts == ()


def test_compute_nodes_hang_off_leaves() -> None:
    found = problems(cables=cables({"node": "cpu01", "switch": "spine1", "switch_port": 9}, drop="cpu01"))
    assert any("compute node port cpu01 mlx5_0 is cabled to spine spine1" in p for p in found)


def test_ftree_needs_leaves_linked_to_spines_only() -> None:
    trunks = [*FABRIC["trunks"], {"switch": "leaf1", "ports": 40, "peer": "leaf2", "peer_ports": 40}]
    found = problems(trunks=trunks)
    assert any("trunk between two leaf switches (leaf1, leaf2)" in p and "updn" in p for p in found)
    site = site_with(trunks=trunks, subnet_manager={"type": "opensm", "hosts": ["ctl"], "routing_engine": "updn"})
    assert site.fabric is not None


def test_a_node_on_two_leaves_has_no_place_in_a_slurm_tree() -> None:
    extra = {"node": "cpu01", "hca": "mlx5_1", "switch": "leaf1", "switch_port": 9}
    found = problems(cables=cables(extra))
    assert any("host cpu01" in p and "leaf switches leaf1, leaf2" in p and "plugin: none" in p for p in found)
    assert site_with(cables=cables(extra), slurm={"plugin": "none"}).fabric is not None


def test_tenant_partitions_need_the_members_port_guids() -> None:
    found = problems(partitions=[{"name": "research", "pkey": "0x0002", "members": ["cpu_nodes", "slurm_dbd"]}])
    assert any("bitten_fabric.partitions[0].members" in p and "dbd mlx5_0" in p and "ibstat -p" in p for p in found)
    found = problems(partitions=[{"name": "a", "pkey": 2, "members": ["nobody"]},
                                 {"name": "a", "pkey": 2, "members": ["gpu_nodes"]}])
    assert any("'nobody' is neither an inventory group nor a host" in p for p in found)
    assert any("partition a is defined twice" in p for p in found)
    assert any("P_Key 0x0002 is also partition a's" in p for p in found)


def test_ipoib_addresses_must_be_unique() -> None:
    found = problems(ipoib={"subnet": "10.30.0.0/24"})
    # _base: gpu01 is 10.0.1.1, cpu01 10.0.2.1 -> both 10.30.0.1 in a /24
    assert any("host gpu01" in p and "IPoIB address 10.30.0.1" in p and "cpu01" in p for p in found)


def test_ipoib_needs_its_hca_cabled_and_its_partition_defined() -> None:
    found = problems(ipoib={"subnet": "10.30.0.0/16", "hca": "mlx5_1"})
    assert any("host cpu01" in p and "IPoIB runs on mlx5_1 port 1, which has no cable on cpu01" in p for p in found)
    found = problems(ipoib={"subnet": "10.30.0.0/16", "partition": "cluster"})
    assert any("partition 'cluster' is not defined" in p for p in found)


def test_block_topology_blocks_hold_at_least_the_base_size() -> None:
    found = problems(slurm={"plugin": "block", "block_sizes": [2, 4]})
    assert any("block leaf2 has 1 node(s), fewer than the base block size 2" in p for p in found)
