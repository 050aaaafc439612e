"""The lab's bare nodes without booting them: their domains, their BMC's configuration, the layer's checks."""

from __future__ import annotations

import ast
from pathlib import Path
from xml.etree import ElementTree

import pytest

from bitten.capabilities import load_site
from bitten.lab import vms
from bitten.lab.bare_bmc import write_config
from bitten.lab.lab import Lab, LabError
from bitten.lab.layers import provision as layer

from conftest import INVENTORIES


def test_a_bare_nodes_domain_boots_pxe_under_tcg_with_the_lab_metadata(tmp_path: Path) -> None:
    spec = vms.VmSpec(site="lab", name="lab-vm01", mac="52:54:00:77:00:41", bridge="podman3", memory_mb=1536,
                      uefi=True, disk=tmp_path / "lab-vm01.qcow2", console=tmp_path / "lab-vm01.console")
    root = ElementTree.fromstring(vms.domain_xml(spec))
    assert root.get("type") == "qemu" and root.findtext("name") == "lab-vm01"
    assert root.findtext("uuid") == spec.uuid == vms.VmSpec(**{**spec.__dict__}).uuid
    assert root.find("os").get("firmware") == "efi" and root.find("os/boot").get("dev") == "network"
    assert root.find("devices/interface/source").get("bridge") == "podman3"
    assert root.find("devices/interface/mac").get("address") == "52:54:00:77:00:41"
    assert root.find("devices/disk/target").get("dev") == "vda"
    assert root.find("devices/rng") is not None and root.find("devices/memballoon").get("model") == "none"
    assert root.find(f"metadata/{{{vms.METADATA_NS}}}lab").get("site") == "lab"
    stateless = ElementTree.fromstring(vms.domain_xml(vms.VmSpec(**{**spec.__dict__, "disk": None, "uefi": False})))
    assert stateless.find("devices/disk") is None and stateless.find("os").get("firmware") is None


def test_kvm_only_where_it_runs_a_stock_kernel() -> None:
    expected = "qemu" if Path("/sys/module/kvm_pvm").exists() or not Path("/dev/kvm").exists() else None
    if expected:
        assert vms.accel() == expected


def test_the_bare_bmc_sees_only_the_labs_domains(tmp_path: Path) -> None:
    path = tmp_path / "sushy.conf"
    write_config(str(path), host="10.77.0.1", port=8446, cert="/c.pem", key="/k.pem", auth_file="/htpasswd",
                 allowed=["lab-vm01", "0b17-uuid"])
    config: dict[str, object] = {}
    for line in path.read_text().splitlines():
        name, _, value = line.partition(" = ")
        config[name] = ast.literal_eval(value)
    assert config["SUSHY_EMULATOR_ALLOWED_INSTANCES"] == ["0b17-uuid", "lab-vm01"]
    assert config["SUSHY_EMULATOR_LIBVIRT_URI"] == "qemu:///system"
    assert config["SUSHY_EMULATOR_AUTH_FILE"] == "/htpasswd" and config["SUSHY_EMULATOR_SSL_CERT"] == "/c.pem"


def test_the_lab_knows_its_virtual_machines_from_the_model() -> None:
    lab = Lab(INVENTORIES / "lab", load_site(INVENTORIES / "lab"))
    assert lab.vm_hosts == ["lab-vm01"] and "lab-vm01" not in lab.container_hosts
    assert layer.bmc_port(lab) == 8446
    assert lab._capabilities("lab-ctl") == ["--cap-add", "NET_ADMIN,NET_RAW"] and lab._capabilities("lab-dbd") == []
    assert lab._ipv6_subnet() == "fd00:77::/64"


def test_a_bare_nodes_bmc_must_be_the_gateway(inventory_copy) -> None:  # type: ignore[no-untyped-def]
    inventory = inventory_copy("lab")
    hosts = inventory / "hosts.yml"
    hosts.write_text(hosts.read_text().replace('address: "10.77.0.1:8446", system_id: lab-vm01',
                                               'address: "10.99.0.5:443", system_id: lab-vm01'))
    lab = Lab(inventory, load_site(inventory))
    with pytest.raises(LabError, match="a bare node's BMC must be the gateway"):
        layer.bmc_port(lab)


class FakeVirsh:
    """libvirt's side of vms.define: one domain of this lab's, defined on an old bridge."""

    def __init__(self, state: str, bridge: str) -> None:
        self.state, self.bridge, self.defined = state, bridge, ""

    def __call__(self, *args: str, check: bool = True, timeout: float = 120) -> object:
        import subprocess

        out = {
            "dominfo": "Name: lab-vm01",
            "list": "lab-vm01",
            "metadata": '<lab site="lab"/>',
            "domstate": self.state,
            "domiflist": f" -   bridge   {self.bridge}   virtio   52:54:00:77:00:41",
            "dumpxml": f"<domain type='qemu'><name>lab-vm01</name><os><boot dev='hd'/></os><devices><interface "
                       f"type='bridge'><source bridge='{self.bridge}'/></interface></devices></domain>",
        }.get(args[0], "")
        if args[0] == "define":
            self.defined = Path(args[1]).read_text()
        return subprocess.CompletedProcess(["virsh", *args], 0, out, "")


def test_a_domain_left_on_an_old_bridge_follows_the_labs_network(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The lab network was made anew (another bridge name): the shut-off domain is redefined on the new bridge,
    keeping the rest of its definition (here the boot order its BMC set); a running one is refused."""
    fake = FakeVirsh("shut off", "podman5")
    monkeypatch.setattr(vms, "virsh", fake)
    spec = vms.VmSpec(site="lab", name="lab-vm01", mac="52:54:00:77:00:41", bridge="podman2", memory_mb=1536,
                      uefi=True, disk=None, console=tmp_path / "lab-vm01.console")
    assert vms.define(spec) is True
    root = ElementTree.fromstring(fake.defined)
    assert root.find("devices/interface/source").get("bridge") == "podman2"
    assert root.find("os/boot").get("dev") == "hd"

    fake.defined = ""
    monkeypatch.setattr(vms, "virsh", FakeVirsh("shut off", "podman2"))
    assert vms.define(spec) is False

    monkeypatch.setattr(vms, "virsh", FakeVirsh("running", "podman5"))
    with pytest.raises(vms.VmError, match="runs on bridge podman5, not the lab network's podman2"):
        vms.define(spec)
