"""The provisioner role's README lists its variables as meta/argument_specs.yml has them (scripts/role-variables)."""

from __future__ import annotations

import subprocess
import sys

import yaml

from conftest import ROOT

ROLE = ROOT / "roles" / "provisioner"


def test_the_variables_table_is_generated_from_the_spec() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "role-variables"), str(ROLE), "--check"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_defaults_are_in_the_spec_and_the_spec_in_the_defaults() -> None:
    spec = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert set(defaults) == {name for name, option in spec.items() if not option.get("required")}
    for name, value in defaults.items():
        assert spec[name]["default"] == value, name


def test_the_molecule_scenario_and_the_vm_test_boot_the_labs_image() -> None:
    """One recipe, one cached build: the lab, the VM test and the Molecule scenario use the same image."""
    lab = yaml.safe_load((ROOT / "inventory/lab/group_vars/all/provision.yml").read_text())["bitten_provision"]
    pxe = yaml.safe_load((ROOT / "tests/provision/pxe/inventory/group_vars/all/site.yml").read_text())
    molecule = yaml.safe_load((ROLE / "molecule/default/molecule.yml").read_text())
    scenario = molecule["provisioner"]["inventory"]["group_vars"]["all"]["bitten_provision"]
    assert lab["images"] == pxe["bitten_provision"]["images"] == scenario["images"]
