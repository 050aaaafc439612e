"""bitten_provision: what it describes, and every way it can be wrong, with file, host, field and fix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from bitten.capabilities import load_site
from bitten.provision.nodes import boot_nodes, http_base, provisioner, recipes
from bitten.provision.recipe import Recipe
from bitten.site import SiteError
from bitten.site.model import ImageRecipe

from conftest import INVENTORIES


def test_the_lab_provisions_its_virtual_machine() -> None:
    site = load_site(INVENTORIES / "lab")
    assert provisioner(site) == "lab-ctl"
    assert http_base(site) == "http://10.77.0.10"
    nodes = boot_nodes(site)
    assert list(nodes) == ["lab-vm01"]
    vm = nodes["lab-vm01"]
    assert (vm.mac, str(vm.ip), vm.deploy, vm.prefix) == ("52:54:00:77:00:41", "10.77.0.41", "stateless",
                                                           "10.77.0.41/24")
    assert vm.image_id == recipes(site)["lab-compute"].id


def test_bitten_deploys_gpu_nodes_to_disk_and_runs_cpu_nodes_stateless() -> None:
    site = load_site(INVENTORIES / "bitten")
    nodes = boot_nodes(site)
    assert len(nodes) == 48 and "ctl01" not in nodes
    assert {n.deploy for name, n in nodes.items() if name.startswith("gpu")} == {"disk"}
    assert nodes["gpu01"].disk == "/dev/nvme0n1"
    assert {n.deploy for name, n in nodes.items() if name.startswith("cpu")} == {"stateless"}


def test_the_recipe_hash_follows_the_recipe() -> None:
    base = Recipe("compute", ImageRecipe(packages=("slurmd",)))
    assert base.id == Recipe("compute", ImageRecipe(packages=("slurmd",))).id
    assert base.id.startswith("compute-") and len(base.digest) == 12
    assert base.digest != Recipe("compute", ImageRecipe(packages=("slurmd", "vim"))).digest
    assert base.digest != Recipe("compute", ImageRecipe(release="bookworm", packages=("slurmd",))).digest
    assert base.digest != Recipe("compute", ImageRecipe(packages=("slurmd",), kernel_modules=("ext4",))).digest
    assert base.digest != Recipe("other", ImageRecipe(packages=("slurmd",))).digest


def _edit(path: Path, change: Callable[[dict], None]) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _problems(inventory: Path) -> list[str]:
    with pytest.raises(SiteError) as info:
        load_site(inventory)
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize(("change", "expected"), [
    (lambda p: p["bitten_provision"]["profiles"].update(nosuch={"image": "lab-compute"}),
     "bitten_provision.profiles.nosuch: unknown hardware profile 'nosuch'"),
    (lambda p: p["bitten_provision"]["profiles"]["lab_bare"].update(image="missing"),
     "bitten_provision.profiles.lab_bare.image: unknown image 'missing'"),
    (lambda p: p["bitten_provision"]["profiles"]["lab_bare"].update(deploy="disk"),
     "deploy disk needs disk"),
    (lambda p: p["bitten_provision"]["network"].update(gateway="10.99.0.1"),
     "gateway 10.99.0.1 is outside the provisioning subnet 10.77.0.0/24"),
    (lambda p: p["bitten_provision"]["network"].update(subnet="10.66.0.0/24", gateway=None),
     "is outside the provisioning network 10.66.0.0/24"),
    (lambda p: p["bitten_provision"].update(admin_keys=["not a key"]),
     "bitten_provision.admin_keys[0]"),
    (lambda p: p["bitten_provision"]["images"]["lab-compute"].update(packages=["Bad Name"]),
     "bitten_provision.images.lab-compute.packages[0]"),
])
def test_invalid_provisioning_is_reported(inventory_copy: Callable[[str], Path], change: Callable[[dict], None],
                                          expected: str) -> None:
    inventory = inventory_copy("lab")
    _edit(inventory / "group_vars/all/provision.yml", change)
    problems = _problems(inventory)
    assert any(expected in p for p in problems), problems
    assert all("provision.yml" in p or "hosts.yml" in p for p in problems if expected in p), problems


def test_a_provisioned_node_needs_a_boot_mac_and_a_bmc(inventory_copy: Callable[[str], Path]) -> None:
    inventory = inventory_copy("lab")
    hosts = inventory / "hosts.yml"
    hosts.write_text(hosts.read_text().replace('              bitten_boot_mac: "52:54:00:77:00:41"\n', "")
                     .replace('              bitten_bmc: {address: "10.77.0.1:8446", system_id: lab-vm01, '
                              'flavour: generic}\n', ""))
    problems = _problems(inventory)
    assert any("lab-vm01" in p and "bitten_boot_mac" in p and "DHCP could not give it its address" in p
               for p in problems), problems
    assert any("lab-vm01" in p and "bitten_bmc" in p and "nothing could power it on" in p for p in problems)


def test_a_provisioned_profile_boots_pxe(inventory_copy: Callable[[str], Path]) -> None:
    inventory = inventory_copy("lab")
    _edit(inventory / "group_vars/all/site.yml",
          lambda s: s["bitten_hardware_profiles"]["lab_bare"]["boot"].update(target="Hdd"))
    assert any("profile lab_bare is provisioned over PXE but its BMC boots Hdd" in p for p in _problems(inventory))


def test_exactly_one_provisioner(inventory_copy: Callable[[str], Path]) -> None:
    inventory = inventory_copy("lab")
    hosts = inventory / "hosts.yml"
    hosts.write_text(hosts.read_text().replace("    provisioners:\n      hosts:\n        lab-ctl:\n",
                                               "    provisioners:\n      hosts:\n        lab-ctl:\n        lab-dbd:\n"))
    assert any("needs exactly one provisioner on its network (found lab-ctl, lab-dbd)" in p
               for p in _problems(inventory))


def test_a_provisioner_without_bitten_provision(inventory_copy: Callable[[str], Path]) -> None:
    inventory = inventory_copy("lab")
    (inventory / "group_vars/all/provision.yml").write_text("---\n{}\n")
    assert any("a provisioner, but the site sets no bitten_provision" in p for p in _problems(inventory))
