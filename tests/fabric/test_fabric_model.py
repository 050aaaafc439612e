"""bitten_fabric values on their own: GUIDs, port ranges, cable counts, SM placement, P_Keys, IPoIB, block sizes."""

from __future__ import annotations

import ipaddress

import pytest
from fabric_site import FABRIC, site_with
from pydantic import ValidationError

from bitten.site.model import Cable, Fabric, IbPartition, Ipoib, SlurmTopology, SubnetManager
from bitten.site.model.fabric import expand_ports


def test_port_ranges_expand_in_order() -> None:
    assert expand_ports(7) == [7]
    assert expand_ports("1-4,9") == [1, 2, 3, 4, 9]
    with pytest.raises(ValueError, match="runs backwards"):
        expand_ports("8-1")
    with pytest.raises(ValueError, match="not a port or port range"):
        expand_ports("1..8")


def test_a_cable_entry_expands_node_major_onto_the_switch_ports() -> None:
    cable = Cable(node="gpu[01-02]", hca="mlx5_[0-1]", switch="leaf1", switch_port="5-8")
    ports = [(p.node, p.hca, p.switch_port) for p in cable.expand(0)]
    assert ports == [("gpu01", "mlx5_0", 5), ("gpu01", "mlx5_1", 6), ("gpu02", "mlx5_0", 7), ("gpu02", "mlx5_1", 8)]


def test_a_cable_entry_needs_one_switch_port_and_guid_per_node_port() -> None:
    with pytest.raises(ValidationError, match=r"4 node port\(s\) \(gpu\[01-02\] x mlx5_\[0-1\]\) but 3 switch"):
        Cable(node="gpu[01-02]", hca="mlx5_[0-1]", switch="leaf1", switch_port="1-3")
    with pytest.raises(ValidationError, match=r"1 GUID\(s\) for 2 port\(s\)"):
        Cable(node="gpu01", hca="mlx5_[0-1]", switch="leaf1", switch_port="1-2", guids=["0x0000000000000001"])


@pytest.mark.parametrize("guid", ["0xB83FD20300000001", " 0xb83fd20300000001"])
def test_guids_are_normalised(guid: str) -> None:
    fabric = Fabric.model_validate({**FABRIC, "switches": {"leaf1": {"role": "leaf", "guid": guid}}})
    assert fabric.switches["leaf1"].guid == "0xb83fd20300000001"


@pytest.mark.parametrize("guid", ["b83fd20300000001", "0xb83fd203000001", "0xb83fd2030000000g", "b8:3f:d2:03"])
def test_malformed_guids_are_refused(guid: str) -> None:
    with pytest.raises(ValidationError, match="not an InfiniBand GUID"):
        Fabric.model_validate({**FABRIC, "switches": {"leaf1": {"role": "leaf", "guid": guid}}})


@pytest.mark.parametrize(("raw", "message"), [
    ({"type": "opensm"}, "list 1 or 2 hosts"),
    ({"type": "opensm", "hosts": ["a", "b", "c"]}, "list 1 or 2 hosts"),
    ({"type": "opensm", "hosts": ["a", "a"]}, "different hosts"),
    ({"type": "opensm", "hosts": ["a"], "priorities": [3, 9]}, "master > standby"),
    ({"type": "ufm", "hosts": ["a"], "ufm_address": "10.0.0.9"}, "runs no host SM"),
    ({"type": "ufm"}, "needs ufm_address"),
])
def test_subnet_manager_placement(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SubnetManager.model_validate(raw)


def test_pkeys_are_15_bit_and_not_the_default_partition() -> None:
    assert IbPartition(name="t", pkey="0x0002", members=("gpu_nodes",)).pkey_hex == "0x0002"
    for bad in ("0x7fff", "0x8002", "0", "zz"):
        with pytest.raises(ValidationError, match="P_Key"):
            IbPartition(name="t", pkey=bad, members=("gpu_nodes",))


def test_ipoib_address_keeps_the_host_part_of_the_cluster_address() -> None:
    ipoib = Ipoib(subnet=ipaddress.IPv4Network("10.30.0.0/16"))
    assert str(ipoib.address_for(ipaddress.IPv4Address("10.20.1.5"))) == "10.30.1.5/16"
    assert ipoib.effective_mtu == 4092
    assert Ipoib(subnet="10.30.0.0/16", mode="connected").effective_mtu == 65520
    with pytest.raises(ValidationError, match="needs connected mode"):
        Ipoib(subnet="10.30.0.0/16", mtu=9000)


def test_block_sizes_follow_slurms_power_of_two_rule() -> None:
    assert SlurmTopology(plugin="block", block_sizes=(4, 8, 32)).block_sizes == (4, 8, 32)
    with pytest.raises(ValidationError, match="not a power of two times 4"):
        SlurmTopology(plugin="block", block_sizes=(4, 12))
    with pytest.raises(ValidationError, match="for plugin block"):
        SlurmTopology(plugin="tree", block_sizes=(4,))


def test_the_fabric_knows_its_leaves_spines_and_ports() -> None:
    fabric = site_with().fabric
    assert fabric is not None
    assert fabric.leaf_nodes == {"leaf1": ["gpu01", "gpu02"], "leaf2": ["cpu01", "ctl", "dbd"]}
    assert fabric.spine_leaves == {"spine1": ["leaf1", "leaf2"]}
    assert [p.label for p in fabric.ports_of("gpu02")] == ["gpu02 mlx5_0", "gpu02 mlx5_1"]
    assert fabric.nodes == ["cpu01", "ctl", "dbd", "gpu01", "gpu02"]
