"""The UCloud frontend's nftables ruleset and nginx site, as bitten renders them (the bytes `bitten render` shows
and the ucloud_im role installs), checked by nft itself (in a throwaway user and network namespace, as the role's
nft-check does where it may not load rules)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bitten.capabilities import load_site, render_file

from .conftest import ROOT, lab_ucloud, write_inventory

ROLE = ROOT / "roles" / "ucloud_im"
RULESET = "/etc/nftables.d/ucloud-im.nft"
needs_nft = pytest.mark.skipif(shutil.which("nft") is None or shutil.which("unshare") is None,
                               reason="nft and unshare are needed (Debian: nftables, util-linux)")


def render_ruleset(tmp_path: Path, trusted: list[str] | None) -> str:
    ucloud = lab_ucloud()
    if trusted is not None:
        ucloud["trusted_sources"] = trusted
    site = load_site(write_inventory(tmp_path, ucloud))
    text = render_file(site, RULESET, "lab-login")
    (tmp_path / "ucloud-im.nft").write_text(text)
    return text


@needs_nft
@pytest.mark.parametrize("trusted", [["10.20.0.11", "10.20.1.0/24", "fd00::5"], None])
def test_ruleset_is_valid_nft(tmp_path: Path, trusted: list[str] | None) -> None:
    text = render_ruleset(tmp_path, trusted)
    assert "delete table inet ucloud_im" in text and "flush ruleset" not in text
    assert "elements = { 7867, 8889, 42000-65535 }" in text
    assert ("trusted_v6" in text) == bool(trusted)
    if trusted is None:  # every host of the site
        assert "10.77.0.10, 10.77.0.11, 10.77.0.12, 10.77.0.21, 10.77.0.22, 10.77.0.31" in text
    else:
        assert "elements = { 10.20.0.11, 10.20.1.0/24 }" in text and "elements = { fd00::5 }" in text
    check = subprocess.run([str(ROLE / "files" / "nft-check"), str(tmp_path / "ucloud-im.nft")],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr


@needs_nft
def test_nft_check_refuses_a_broken_ruleset(tmp_path: Path) -> None:
    text = render_ruleset(tmp_path, ["10.0.0.1"])
    broken = tmp_path / "broken.nft"
    broken.write_text(text.replace("tcp dport @internal_ports counter drop", "tcp dport @internal_ports counter dorp"))
    check = subprocess.run([str(ROLE / "files" / "nft-check"), str(broken)], capture_output=True, text=True,
                           check=False)
    assert check.returncode != 0 and "dorp" in check.stderr


def test_gateway_port_and_tls_directory_come_from_the_model(tmp_path: Path) -> None:
    ucloud = lab_ucloud() | {"gateway_port": 9889, "tls_directory": "/etc/ssl/ucloud", "public_port": 8443}
    site = load_site(write_inventory(tmp_path, ucloud))
    nginx = render_file(site, "/etc/nginx/sites-available/ucloud-im.conf", "lab-login")
    assert "proxy_pass http://127.0.0.1:9889;" in nginx
    assert "listen 8443 ssl;" in nginx and "ssl_certificate_key /etc/ssl/ucloud/server.key;" in nginx
    assert "elements = { 7867, 9889, 42000-65535 }" in render_file(site, RULESET, "lab-login")


def test_a_trusted_source_that_is_no_address_is_an_inventory_error(tmp_path: Path) -> None:
    from bitten.site import SiteError

    with pytest.raises(SiteError, match="trusted_sources"):
        load_site(write_inventory(tmp_path, lab_ucloud() | {"trusted_sources": ["lab-ctl"]}))
