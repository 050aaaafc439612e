"""The files provisioning generates: what dnsmasq, nginx, iPXE and each node get, from the model only."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bitten.capabilities import FILES, load_site, render_file, render_tree
from bitten.core.files import rendered, spec_and_item
from bitten.provision.nodes import boot_nodes

from conftest import INVENTORIES


@pytest.fixture(scope="module")
def bitten_site():  # type: ignore[no-untyped-def]
    return load_site(INVENTORIES / "bitten")


def test_every_node_has_a_reservation_and_no_other_mac_gets_a_lease(bitten_site) -> None:  # type: ignore[no-untyped-def]
    conf = render_file(bitten_site, "/etc/dnsmasq.d/bitten-provision.conf", "ctl01")
    hosts = re.findall(r"^dhcp-host=([0-9a-f:]{17}),set:node-([a-z0-9-]+),([\d.]+),([a-z0-9-]+)$", conf, re.M)
    nodes = boot_nodes(bitten_site)
    assert len(hosts) == len(nodes) == 48
    for mac, tag, ip, name in hosts:
        assert (nodes[name].mac, str(nodes[name].ip), tag) == (mac, ip, name)
    assert "dhcp-ignore=tag:!known" in conf.splitlines()
    assert "dhcp-range=set:provisioning,10.20.0.0,static,255.255.0.0,12h" in conf
    assert "interface=eno1" in conf and "port=0" in conf
    assert "dhcp-option=tag:provisioning,option:router,10.20.0.1" in conf
    assert "dhcp-boot=tag:ipxe,tag:node-gpu01,http://10.20.0.11/nodes/gpu01/boot.ipxe" in conf
    assert "dhcp-boot=tag:!ipxe,tag:efi-x86_64,snponly.efi" in conf
    assert "dhcp-range=fd00:20::,ra-only,64" in conf
    # the service nodes are not provisioned by bitten: no reservation
    assert "login01" not in conf and ",ctl01" not in conf


def test_boot_scripts_name_the_image_build_and_the_deploy(bitten_site) -> None:  # type: ignore[no-untyped-def]
    nodes = boot_nodes(bitten_site)
    gpu = render_file(bitten_site, "/srv/bitten/provision/http/nodes/gpu01/boot.ipxe", "ctl01")
    cpu = render_file(bitten_site, "/srv/bitten/provision/http/nodes/cpu01/boot.ipxe", "ctl01")
    assert gpu.startswith("#!ipxe\n")
    image = nodes["gpu01"].image_id
    assert f"set image http://10.20.0.11/images/bitten-compute/{image}" in gpu
    assert "bitten.deploy=disk bitten.disk=/dev/nvme0n1" in gpu
    assert "rdinit=/sbin/init" in gpu
    assert "initrd --name identity.cpio http://10.20.0.11/nodes/gpu01/identity.cpio" in gpu
    assert "bitten.deploy" not in cpu and f"bitten.image={nodes['cpu01'].image_id}" in cpu
    with pytest.raises(KeyError, match="not one of its items"):
        render_file(bitten_site, "/srv/bitten/provision/http/nodes/login01/boot.ipxe", "ctl01")
    assert spec_and_item(FILES, "/srv/bitten/provision/http/nodes/cpu07/boot.ipxe")[1] == "cpu07"


def test_each_overlay_goes_only_to_its_node(bitten_site) -> None:  # type: ignore[no-untyped-def]
    conf = render_file(bitten_site, "/etc/nginx/conf.d/bitten-provision.conf", "ctl01")
    assert "listen 10.20.0.11:80;" in conf
    block = re.search(r"location = /nodes/gpu01/identity\.cpio \{\s*allow ([\d.]+);\s*deny all;\s*\}", conf)
    assert block and block.group(1) == "10.20.1.1"
    assert conf.count("identity.cpio {") == 48


def test_identity_files_come_from_the_model(bitten_site) -> None:  # type: ignore[no-untyped-def]
    assert render_file(bitten_site, "/etc/hostname", "cpu01") == "cpu01\n"
    network = render_file(bitten_site, "/etc/systemd/network/10-bitten.network", "cpu01")
    node = bitten_site.nodes["cpu01"]
    assert f"MACAddress={node.boot_mac}" in network and f"Address={node.ip}/16" in network
    assert "Gateway=10.20.0.1" in network and "DNS=10.20.0.2" in network
    info = json.loads(render_file(bitten_site, "/etc/bitten/node.json", "gpu01"))
    assert info["report_url"] == "http://10.20.0.11/report" and info["deploy"] == "disk"
    assert info["identity_url"] == "http://10.20.0.11/nodes/gpu01/identity.cpio"
    keys = render_file(bitten_site, "/root/.ssh/authorized_keys", "gpu01")
    assert keys.startswith("ssh-ed25519 ") and keys.count("\n") == 1
    nodes = json.loads(render_file(bitten_site, "/etc/bitten/provision/nodes.json", "ctl01"))["nodes"]
    assert nodes["gpu01"] == {"mac": "02:b1:77:01:00:01", "ip": "10.20.1.1", "deploy": "disk",
                              "disk": "/dev/nvme0n1", "image_id": boot_nodes(bitten_site)["gpu01"].image_id}


def test_render_shows_every_provisioning_file(tmp_path: Path) -> None:
    site = load_site(INVENTORIES / "lab")
    render_tree(site, tmp_path / "out")
    out = tmp_path / "out"
    for host, path in (("lab-ctl", "/etc/dnsmasq.d/bitten-provision.conf"),
                       ("lab-ctl", "/etc/nginx/conf.d/bitten-provision.conf"),
                       ("lab-ctl", "/etc/bitten/provision/nodes.json"),
                       ("lab-ctl", "/srv/bitten/provision/http/nodes/lab-vm01/boot.ipxe"),
                       ("lab-vm01", "/etc/hostname"), ("lab-vm01", "/etc/systemd/network/10-bitten.network"),
                       ("lab-vm01", "/etc/bitten/node.json"), ("lab-vm01", "/root/.ssh/authorized_keys")):
        assert rendered(out, host, path).is_file(), (host, path)
    manifest = (out / "manifest.tsv").read_text()
    assert "/root/.ssh/authorized_keys\tlab-vm01\t0600\troot:root\t" in manifest
    assert "/srv/bitten/provision/http/nodes/lab-vm01/boot.ipxe\tlab-ctl\t0644" in manifest
    # the lab network is dual-stack for the RAs; nobody gets the provisioner as an IPv6 router
    dnsmasq = rendered(out, "lab-ctl", "/etc/dnsmasq.d/bitten-provision.conf").read_text()
    assert "ra-param=eth0,60,0" in dnsmasq
