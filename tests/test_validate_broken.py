"""Broken inventories: each fails with exit 2 and messages naming file, host and field; nothing is written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bitten.cli import app

from conftest import BROKEN, INVENTORIES

CASES = sorted(p.name for p in BROKEN.iterdir() if p.is_dir() and not p.name.startswith("_"))
runner = CliRunner()


def compose(case: str, dest: Path) -> Path:
    """The base inventory with the case's files laid over it."""
    shutil.copytree(BROKEN / "_base", dest)
    for src in (BROKEN / case).rglob("*"):
        if src.is_file() and src.name != "expect.yml":
            target = dest / src.relative_to(BROKEN / case)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, target)
    return dest


def test_base_is_valid(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(compose("_none", tmp_path / "inv"))])
    assert result.exit_code == 0, result.output
    assert "tiny: valid — 6 hosts, 3 compute nodes, 16 GPUs" in result.stdout


@pytest.mark.parametrize("case", CASES)
def test_broken_inventory_fails_with_precise_messages(case: str, tmp_path: Path) -> None:
    inventory = compose(case, tmp_path / "inv")
    out = tmp_path / "out"
    for command in (["validate", str(inventory)], ["render", str(inventory), "--out", str(out)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        lines = result.stderr.splitlines()
        for expected in yaml.safe_load((BROKEN / case / "expect.yml").read_text()):
            if "absent" in expected:
                assert expected["absent"] not in result.output, (expected, result.output)
                continue
            parts = [expected["text"]]
            if "file" in expected:
                parts.append(f"{inventory}/{expected['file']}:")
            if "host" in expected:
                parts.append(f"host {expected['host']}:")
            if "field" in expected:
                parts.append(f"field {expected['field']}:")
            assert any(all(p in line for p in parts) for line in lines), (parts, result.stderr)
        assert "nothing was written or contacted" in result.stderr
        assert not out.exists()
        assert not out.with_name("out.rendering").exists()


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    """Problems from different stages (bad value, unknown profile, cooling, ucloud) arrive in one run."""
    inventory = compose("bad-values", tmp_path / "inv")
    for case in ("unknown-profile", "undefined-cooling-loop", "ucloud-missing-partition"):
        for src in (BROKEN / case).rglob("*.yml"):
            if src.name != "expect.yml" and "site.yml" not in src.name:
                target = inventory / src.relative_to(BROKEN / case)
                shutil.copy(src, target)
    result = runner.invoke(app, ["validate", str(inventory)])
    assert result.exit_code == 2
    for text in ("10.0.1.300", "is not a MAC address", "valid integer", "unknown hardware profile 'cpu-v2'",
                 "cooling loop 'loop-b' is not defined"):
        assert text in result.stderr


def test_vaulted_values_decrypt_with_the_password_file(tmp_path: Path) -> None:
    """With the vault password, an inline-vaulted value and a vaulted file decrypt; a bad vaulted value is reported
    without its plaintext or ciphertext."""
    inventory = compose("vault-no-password", tmp_path / "inv")
    password = str(BROKEN.parent / "fixtures" / "vault-password")
    result = runner.invoke(app, ["validate", str(inventory), "--vault-password-file", password])
    assert result.exit_code == 2, result.output
    assert f"{inventory}/host_vars/gpu02.yml:1: host gpu02: field bitten_boot_mac: <vaulted value> is not a MAC" \
        in result.stderr
    assert "hunter2" not in result.output and "$ANSIBLE_VAULT" not in result.output
    (inventory / "host_vars" / "gpu02.yml").write_text('bitten_boot_mac: "02:00:00:00:01:02"\n')
    result = runner.invoke(app, ["validate", str(inventory), "--vault-password-file", password])
    assert result.exit_code == 0, result.output


def test_missing_inventory_path(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert f"{tmp_path / 'nope'}: inventory not found" in result.stderr


@pytest.mark.parametrize("site", ["bitten", "lab"])
def test_shipped_inventories_are_valid(site: str) -> None:
    result = runner.invoke(app, ["validate", str(INVENTORIES / site)])
    assert result.exit_code == 0, result.stderr


def test_an_invalid_address_of_a_provisioned_cabled_node_is_reported_not_a_crash(tmp_path: Path) -> None:
    """The reference site (provisioning network, fabric with IPoIB) with one node's bitten_ip invalid: the checks
    that compare addresses skip it (its own error says what is wrong) instead of failing on the missing value."""
    inventory = tmp_path / "inv"
    shutil.copytree(INVENTORIES / "bitten", inventory)
    hosts = inventory / "hosts.yml"
    hosts.write_text(hosts.read_text().replace("bitten_ip: 10.20.1.1\n", "bitten_ip: 10.20.1.300\n", 1))
    result = runner.invoke(app, ["validate", str(inventory)])
    assert result.exit_code == 2, result.output
    problems = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(problems) == 1, result.stderr
    assert "hosts.yml:" in problems[0] and "host gpu01" in problems[0] and "field bitten_ip" in problems[0]
    assert "10.20.1.300" in problems[0]
