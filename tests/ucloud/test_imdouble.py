"""The IM test double's start-up steps against the Core test double, and its package."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from bitten.capabilities import render_file
from bitten.lab.doubles import ucloud_im as imdouble
from bitten.lab.doubles.ucloud_core import CoreDouble, generate_keys
from bitten.lab.doubles.ucloud_package import build
from bitten.site import Site
from bitten.ucloud.check import compare
from bitten.ucloud.core import CoreClient, ProviderSpec
from bitten.ucloud.im.parser import parse_directory

from .conftest import ADMIN


def frontend(tmp_path: Path, site: Site, refresh_token: str, public_key: str) -> tuple[Path, Site]:
    """/etc/ucloud as the role writes it, with the IM's directories under tmp_path."""
    dirs = {name: tmp_path / name for name in ("ipc", "logs", "envoy", "scripts")}
    for d in dirs.values():
        d.mkdir()
    script = dirs["scripts"] / "hook"
    script.write_text("#!/bin/sh\n")
    uc = site.ucloud
    assert uc is not None
    fs = uc.file_systems["storage"]
    local = site.model_copy(update={"ucloud": uc.model_copy(update={
        "ipc_directory": str(dirs["ipc"]), "log_directory": str(dirs["logs"]), "envoy_directory": str(dirs["envoy"]),
        "envoy_executable": str(script),
        "identity_management": uc.identity_management.model_copy(update={
            "on_user_connected": str(script), "on_project_updated": str(script)}),
        "file_systems": {"storage": fs.model_copy(update={"management": fs.management.model_copy(update={
            "on_quota_updated": str(script), "on_usage_reporting": str(script)})})},
    })})
    etc = tmp_path / "etc-ucloud"
    etc.mkdir()
    secrets = {"ucloud_refresh_token": refresh_token, "ucloud_db_password": "pw"}
    for name in ("config", "server", "secrets"):
        (etc / f"{name}.yml").write_text(render_file(local, f"/etc/ucloud/{name}.yml", "lab-login", secrets))
    (etc / "ucloud_key.pub").write_text(public_key + "\n")
    return etc, local


@pytest.fixture
def registered(core: CoreDouble) -> tuple[CoreClient, str, str]:
    client = CoreClient(core.url)
    made = client.retrieve_provider(client.create_provider(ProviderSpec("lab", "lab.example"), ADMIN, "p"), ADMIN)
    return client, made.refresh_token, made.public_key


def test_double_authenticates_and_registers_the_sites_products(
        core: CoreDouble, lab_site: Site, tmp_path: Path, registered: tuple[CoreClient, str, str]) -> None:
    client, token, key = registered
    etc, local = frontend(tmp_path, lab_site, token, key)
    parsed = imdouble.check_config(etc)
    api = imdouble.Core(core.url)
    access = imdouble.access_token(api, parsed)
    products = imdouble.register_products(api, access, parsed)
    assert len(products) == 5
    on_core = client.browse_products("lab", token=client.refresh(token))
    from bitten.ucloud import imconfig

    assert compare("lab", imconfig.expected_products(local), on_core).ok
    # a second start registers again without complaint (the IM does this at every start)
    imdouble.register_products(api, access, parsed)


def test_double_refuses_a_key_that_does_not_match(
        core: CoreDouble, lab_site: Site, tmp_path: Path, registered: tuple[CoreClient, str, str]) -> None:
    _, token, _ = registered
    etc, _ = frontend(tmp_path, lab_site, token, generate_keys()[0])
    with pytest.raises(imdouble.Fatal, match=r"ucloud_key\.pub does not match"):
        imdouble.access_token(imdouble.Core(core.url), imdouble.check_config(etc))


def test_double_refuses_a_wrong_refresh_token(
        core: CoreDouble, lab_site: Site, tmp_path: Path, registered: tuple[CoreClient, str, str]) -> None:
    _, _, key = registered
    etc, _ = frontend(tmp_path, lab_site, "wrong-token", key)
    with pytest.raises(imdouble.Fatal, match=r"rejected the refresh token in server\.yml"):
        imdouble.access_token(imdouble.Core(core.url), imdouble.check_config(etc))


def test_double_refuses_category_changes_like_the_im(
        core: CoreDouble, lab_site: Site, tmp_path: Path, registered: tuple[CoreClient, str, str]) -> None:
    _, token, key = registered
    etc, _ = frontend(tmp_path, lab_site, token, key)
    parsed = imdouble.check_config(etc)
    api = imdouble.Core(core.url)
    access = imdouble.access_token(api, parsed)
    imdouble.register_products(api, access, parsed)
    parsed.machines[0].payment.interval = "Hourly"
    with pytest.raises(imdouble.Fatal, match="has changed accounting frequency"):
        imdouble.register_products(api, access, parsed)


def test_double_stops_on_config_errors(lab_site: Site, tmp_path: Path) -> None:
    etc, _ = frontend(tmp_path, lab_site, "t", generate_keys()[0])
    config = etc / "config.yml"
    config.write_text(config.read_text().replace("memory: [1, 1]", "memory: [1]", 1))
    with pytest.raises(imdouble.Fatal, match="is invalid"):
        imdouble.check_config(etc)
    assert any("memory must have the same length as cpu" in str(i) for i in parse_directory(etc).errors)


def test_packages_run_the_double(lab_site: Site, tmp_path: Path) -> None:
    tarball = build("tar", tmp_path / "out")
    with tarfile.open(tarball) as tar:
        assert sorted(tar.getnames()) == ["TEST-DOUBLE.txt", "envoy", "envoy/envoy", "ucloud"]
        tar.extractall(tmp_path / "opt", filter="data")
    version = subprocess.run([sys.executable, str(tmp_path / "opt" / "ucloud"), "version"], capture_output=True,
                             text=True, check=True)
    assert "test double" in version.stdout
    (tmp_path / "fe").mkdir()
    etc, _ = frontend(tmp_path / "fe", lab_site, "t", generate_keys()[0])
    ok = subprocess.run([sys.executable, str(tmp_path / "opt" / "ucloud"), "check-config", "--config-dir", str(etc)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (etc / "server.yml").write_text("refreshToken: t\n")
    bad = subprocess.run([sys.executable, str(tmp_path / "opt" / "ucloud"), "check-config", "--config-dir", str(etc)],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "could not find property 'database'" in bad.stdout
    deb = build("deb", tmp_path / "out")
    info = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Depends"], capture_output=True, text=True,
                          check=True).stdout
    assert "ucloud-im-test-double" in info and "python3-psycopg2" in info
