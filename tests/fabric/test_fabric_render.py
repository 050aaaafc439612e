"""Files rendered from the fabric: topology.conf, TopologyPlugin, OpenSM's config and IPoIB, in `bitten render`."""

from __future__ import annotations

from pathlib import Path

import pytest
from fabric_site import site_with

from bitten.capabilities import load_site, render_file, render_tree
from bitten.core.files import rendered
from bitten.site import Site

from conftest import INVENTORIES


@pytest.fixture(scope="module")
def bitten() -> Site:
    return load_site(INVENTORIES / "bitten")


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_reference_site_topology_conf_is_a_tree_of_its_leaves_and_spines(bitten: Site) -> None:
    text = render_file(bitten, "/etc/slurm/topology.conf", "gpu01")
    assert lines(text) == [
        "SwitchName=ib-leaf01 Nodes=gpu[01-04]", "SwitchName=ib-leaf02 Nodes=gpu[05-08]",
        "SwitchName=ib-leaf03 Nodes=gpu[09-12]", "SwitchName=ib-leaf04 Nodes=gpu[13-16]",
        "SwitchName=ib-leaf05 Nodes=cpu[01-32]",
        *(f"SwitchName=ib-spine0{i} Switches=ib-leaf[01-05]" for i in range(1, 5)),
    ]
    assert "TopologyPlugin=topology/tree\n" in render_file(bitten, "/etc/slurm/slurm.conf", "ctl01")


def test_service_nodes_stay_out_of_slurms_topology() -> None:
    # ctl and dbd share leaf2 with cpu01; Slurm knows only its compute nodes
    text = render_file(site_with(), "/etc/slurm/topology.conf", "ctl")
    assert lines(text) == ["SwitchName=leaf1 Nodes=gpu[01-02]", "SwitchName=leaf2 Nodes=cpu01",
                           "SwitchName=spine1 Switches=leaf[1-2]"]


def test_block_topology_is_one_block_per_leaf() -> None:
    site = site_with(slurm={"plugin": "block"})
    assert lines(render_file(site, "/etc/slurm/topology.conf", "ctl")) == [
        "BlockName=leaf1 Nodes=gpu[01-02]", "BlockName=leaf2 Nodes=cpu01", "BlockSizes=1"]
    assert "TopologyPlugin=topology/block\n" in render_file(site, "/etc/slurm/slurm.conf", "ctl")
    site = site_with(slurm={"plugin": "block", "block_sizes": [1, 2]})
    assert lines(render_file(site, "/etc/slurm/topology.conf", "ctl"))[-1] == "BlockSizes=1,2"


def test_no_fabric_or_no_topology_means_no_topology_conf(tmp_path: Path) -> None:
    for site in (site_with(slurm={"plugin": "none"}), load_site(INVENTORIES / "lab")):
        assert "TopologyPlugin" not in render_file(site, "/etc/slurm/slurm.conf", sorted(site.controllers)[0])
        with pytest.raises(KeyError, match=r"does not get /etc/slurm/topology\.conf"):
            render_file(site, "/etc/slurm/topology.conf", sorted(site.controllers)[0])


def test_opensm_master_and_standby_differ_only_in_priority(bitten: Site) -> None:
    master = render_file(bitten, "/etc/opensm/opensm.conf", "ctl01")
    standby = render_file(bitten, "/etc/opensm/opensm.conf", "dbd01")
    assert "sm_priority 14\n" in master and "sm_priority 13\n" in standby
    for text in (master, standby):
        for line in ("routing_engine ftree", "root_guid_file /etc/opensm/root-guids.conf",
                     "partition_config_file /etc/opensm/partitions.conf", "subnet_prefix 0xfe80000000000000"):
            assert line + "\n" in text
    assert lines(master.replace("14", "13")) == lines(standby)
    assert lines(render_file(bitten, "/etc/opensm/root-guids.conf", "ctl01")) == [
        f"0xb83fd20300e1000{i}" for i in range(1, 5)]
    assert 'PORTS="0x946dae0300000100"' in render_file(bitten, "/etc/default/opensm", "ctl01")


def test_partitions_conf_names_every_member_port_by_guid(bitten: Site) -> None:
    text = render_file(bitten, "/etc/opensm/partitions.conf", "ctl01")
    assert "Default=0x7fff, ipoib : ALL=limited, ALL_SWITCHES=full, SELF=full ;\n" in text
    assert "cluster=0x0002, ipoib, mtu=5, defmember=full :\n" in text
    assert "gpu=0x0003, defmember=full :\n" in text
    cluster = text.split("cluster=0x0002")[1].split(";")[0]
    gpu = text.split("gpu=0x0003")[1].split(";")[0]
    assert cluster.count("=full,") == 16 * 8 + 32 + 3
    assert gpu.count("=full,") == 16 * 8 and "cpu01" not in gpu
    assert "  0x946dae0300010100=full,  # gpu01 mlx5_0\n" in gpu


def test_a_fabric_without_tenants_keeps_everyone_in_the_default_partition() -> None:
    text = render_file(site_with(ipoib={"subnet": "10.30.0.0/16"}), "/etc/opensm/partitions.conf", "ctl")
    assert lines(text) == ["Default=0x7fff, ipoib, mtu=5 : ALL=full ;"]


def test_a_ufm_site_gets_no_opensm_files(tmp_path: Path) -> None:
    site = site_with(subnet_manager={"type": "ufm", "ufm_address": "10.3.0.100"})
    render_tree(site, tmp_path / "out")
    assert not list((tmp_path / "out").rglob("opensm*"))
    assert rendered(tmp_path / "out", "ctl", "/etc/slurm/topology.conf").is_file()


def test_ipoib_in_the_tenant_partition(bitten: Site) -> None:
    parent = render_file(bitten, "/etc/systemd/network/60-bitten-ipoib.network", "gpu05")
    netdev = render_file(bitten, "/etc/systemd/network/60-bitten-ipoib-pkey.netdev", "gpu05")
    child = render_file(bitten, "/etc/systemd/network/61-bitten-ipoib-pkey.network", "gpu05")
    assert "Name=ib0\n" in parent and "IPoIB=ib0.8002\n" in parent and "Address=" not in parent
    assert "Name=ib0.8002\n" in netdev and "Kind=ipoib\n" in netdev and "PartitionKey=0x8002\n" in netdev
    assert "Name=ib0.8002\n" in child and "Address=10.30.1.5/16\n" in child and "MTUBytes=4092\n" in child


def test_ipoib_in_the_default_partition() -> None:
    site = site_with(ipoib={"subnet": "10.30.0.0/16", "mode": "datagram"})
    text = render_file(site, "/etc/systemd/network/60-bitten-ipoib.network", "gpu02")
    assert "Address=10.30.1.2/16\n" in text and "Mode=datagram\n" in text
    with pytest.raises(KeyError):
        render_file(site, "/etc/systemd/network/60-bitten-ipoib-pkey.netdev", "gpu02")


def test_render_lists_the_fabric_files_for_review(tmp_path: Path, bitten: Site) -> None:
    out = tmp_path / "out"
    render_tree(bitten, out)
    for host, path in (("ctl01", "/etc/opensm/opensm.conf"), ("dbd01", "/etc/opensm/partitions.conf"),
                       ("gpu16", "/etc/slurm/topology.conf"),
                       ("login01", "/etc/systemd/network/61-bitten-ipoib-pkey.network")):
        assert rendered(out, host, path).is_file()
    # the master and the standby differ (their priority): one file each
    assert rendered(out, "ctl01", "/etc/opensm/opensm.conf") != rendered(out, "dbd01", "/etc/opensm/opensm.conf")
    with pytest.raises(KeyError):
        rendered(out, "gpu01", "/etc/opensm/opensm.conf")
