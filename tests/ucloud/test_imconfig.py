"""The IM's files built from the site model: content, secrets, derivation, and site validation errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bitten.capabilities import load_site, render_file
from bitten.cli import app
from bitten.core.files import rendered
from bitten.site import Site, SiteError
from bitten.ucloud import imconfig
from bitten.ucloud.im.parser import ConfigInvalid, parse_config, parse_server

from .conftest import ROOT, lab_ucloud, write_inventory


def test_config_is_what_the_im_accepts(lab_site: Site) -> None:
    text = render_file(lab_site, "/etc/ucloud/config.yml", "lab-login")
    assert text.startswith("# /etc/ucloud/config.yml")
    parsed = parse_config(text, "config.yml")
    assert parsed.ok, [str(i) for i in parsed.issues]
    assert parsed.provider_id == "lab"
    machines = {m.name: m for m in parsed.machines}
    assert machines["b200"].partition == "gpu" and machines["b200"].qos == "ucloud-b200"
    assert machines["b200"].groups[0].gpu_model == "NVIDIA B200 SXM (stand-in)"
    doc = yaml.safe_load(text)
    assert doc["provider"]["hosts"]["selfPublic"] == {"address": "lab-login.lab.bitten.test", "port": 443,
                                                      "scheme": "https"}


def test_render_shows_named_placeholders_and_roles_get_values(lab_site: Site) -> None:
    review = render_file(lab_site, "/etc/ucloud/server.yml", "lab-login")
    assert "refreshToken: <secret:ucloud_refresh_token>" in review
    assert "password: <secret:ucloud_db_password>" in review
    deployed = render_file(lab_site, "/etc/ucloud/server.yml", "lab-login",
                           {"ucloud_refresh_token": "tok: with # specials", "ucloud_db_password": "pw"})
    server = parse_server(deployed)
    assert server.refresh_token == "tok: with # specials" and server.db_password == "pw"
    class Tagged(str):  # Ansible hands values over as str subclasses
        pass

    tagged = render_file(lab_site, "/etc/ucloud/server.yml", "lab-login",
                         {"ucloud_refresh_token": Tagged("t"), "ucloud_db_password": Tagged("p")})
    assert parse_server(tagged).refresh_token == "t"
    with pytest.raises(KeyError, match="ucloud_db_password"):
        render_file(lab_site, "/etc/ucloud/server.yml", "lab-login", {"ucloud_refresh_token": "x"})


def test_bitten_render_writes_ucloud_files_without_secret_values(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["render", str(ROOT / "inventory" / "bitten"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (tmp_path / "o" / "etc" / "ucloud").iterdir())
    assert files == ["config.yml", "secrets.yml", "server.yml"]
    with pytest.raises(KeyError):
        rendered(tmp_path / "o", "gpu01", "/etc/ucloud/server.yml")
    server = rendered(tmp_path / "o", "login01", "/etc/ucloud/server.yml").read_text()
    assert "<secret:ucloud_refresh_token>" in server


def test_sizes_derived_from_the_hardware_profile() -> None:
    site = load_site(ROOT / "inventory" / "bitten")
    entry, problems = imconfig.machine_sizes(site, "b200", site.ucloud.machine_types["b200"])  # type: ignore[union-attr]
    assert not problems
    assert entry["cpu"] == [16, 32, 64, 128] and entry["memory"] == [275, 550, 1100, 2200]
    assert entry["cpuModel"] == "AMD EPYC 9575F" and entry["gpuModel"] == "NVIDIA B200 SXM"


def test_freeipa_secret_goes_to_secrets_yml(tmp_path: Path) -> None:
    uc = lab_ucloud()
    uc["identity_management"] = {"type": "FreeIPA", "url": "https://ipa.lab", "username": "ucloud-admin"}
    site = load_site(write_inventory(tmp_path, uc))
    assert imconfig.secret_names(site) == ["ucloud_refresh_token", "ucloud_db_password", "ucloud_freeipa_password"]
    secrets = yaml.safe_load(render_file(site, "/etc/ucloud/secrets.yml", "lab-login"))
    assert secrets["freeipa"]["password"] == "<secret:ucloud_freeipa_password>"
    assert yaml.safe_load(render_file(site, "/etc/ucloud/config.yml", "lab-login"))["services"][
        "identityManagement"] == {"type": "FreeIPA"}


def problems_of(path: Path) -> list[str]:
    with pytest.raises(SiteError) as info:
        load_site(path)
    return [str(p) for p in info.value.problems]


def test_unequal_lists_are_a_site_error_naming_the_field(tmp_path: Path) -> None:
    uc = lab_ucloud()
    uc["machine_types"]["cpu"]["memory"] = [1, 1, 1]
    found = problems_of(write_inventory(tmp_path, uc))
    hit = [p for p in found if "memory must have the same length as cpu (2 != 3)" in p]
    assert hit and "field bitten_ucloud.machine_types.cpu.memory" in hit[0] and "ucloud.yml" in hit[0]


def test_money_without_prices_and_bad_suffix(tmp_path: Path) -> None:
    uc = lab_ucloud()
    uc["machine_types"]["cpu"]["payment"] = {"type": "Money", "currency": "DKK"}
    uc["machine_types"]["b200"]["name_suffix"] = "Memory"
    found = "\n".join(problems_of(write_inventory(tmp_path, uc)))
    assert "price must be specified for all machine groups when payment type is Money!" in found
    assert "two sizes give the product name 'b200-1'" in found


def test_payment_unit_needs_matching_billing_weights(tmp_path: Path) -> None:
    parts = [{"name": "gpu", "groups": ["gpu_nodes"], "gpu": True, "qos": ["gpu", "ucloud-b200"],
              "billing_weights": {"CPU": 1.0}},
             {"name": "cpu", "groups": ["cpu_nodes"], "default": True, "qos": ["normal", "ucloud-cpu"],
              "billing_weights": {"CPU": 1.0}}]
    found = "\n".join(problems_of(write_inventory(tmp_path, partitions=parts)))
    assert "UCloud machine type b200 bills by Gpu but the partition's TRESBillingWeights has no GRES/gpu" in found


def test_cpu_required_without_gpu(tmp_path: Path) -> None:
    uc = lab_ucloud()
    del uc["machine_types"]["cpu"]["cpu"]
    found = "\n".join(problems_of(write_inventory(tmp_path, uc)))
    assert "field bitten_ucloud.machine_types.cpu.cpu: cpu is required for a machine type without gpu" in found


def test_builder_refuses_before_writing(lab_site: Site) -> None:
    broken = lab_site.model_copy(update={"ucloud": lab_site.ucloud.model_copy(update={  # type: ignore[union-attr]
        "machine_types": {"x": lab_site.ucloud.machine_types["cpu"].model_copy(  # type: ignore[union-attr]
            update={"memory": (1, 2, 3)})}})})
    with pytest.raises(ConfigInvalid, match="memory must have the same length as cpu"):
        imconfig.render(broken, "config")


def test_products_command_lists_the_sites_products() -> None:
    result = CliRunner().invoke(app, ["ucloud", "products", str(ROOT / "inventory" / "lab")])
    assert result.exit_code == 0, result.output
    for name in ("b200-1", "b200-2", "cpu-1", "cpu-2", "storage"):
        assert name in result.output
