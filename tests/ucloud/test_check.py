"""`bitten ucloud check` against the Core test double: passes when registered, fails clearly otherwise."""

from __future__ import annotations

import socket
from pathlib import Path

from typer.testing import CliRunner

from bitten.cli import app
from bitten.core.pki import ServerTls
from bitten.lab.doubles.ucloud_core import CoreDouble
from bitten.site import Site
from bitten.ucloud import imconfig
from bitten.ucloud.core import CoreClient, ProviderSpec

from .conftest import ADMIN, ROOT

LAB = str(ROOT / "inventory" / "lab")


def register(core: CoreDouble, site: Site, drop: int = 0) -> str:
    client = CoreClient(core.url)
    made = client.retrieve_provider(client.create_provider(ProviderSpec("lab", "lab-login.lab.bitten.test"), ADMIN,
                                                           "p"), ADMIN)
    products = imconfig.expected_products(site)
    client.register_products(products[drop:], client.refresh(made.refresh_token))
    return made.refresh_token


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["ucloud", "check", LAB, *args], env=env or {})
    return result.exit_code, result.output


def test_check_passes_when_every_product_is_registered(core: CoreDouble, lab_site: Site) -> None:
    token = register(core, lab_site)
    code, output = run("--core-url", core.url, env={"BITTEN_UCLOUD_REFRESH_TOKEN": token})
    assert code == 0, output
    assert "all 5 product(s) of lab are registered" in output


def test_check_reads_the_token_from_a_file(core: CoreDouble, lab_site: Site, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(register(core, lab_site) + "\n")
    code, output = run("--core-url", core.url, "--refresh-token-file", str(token_file))
    assert code == 0, output


def test_missing_products_fail(core: CoreDouble, lab_site: Site) -> None:
    token = register(core, lab_site, drop=2)
    code, output = run("--core-url", core.url, env={"BITTEN_UCLOUD_REFRESH_TOKEN": token})
    assert code == 1
    assert "2 of 5 product(s) are not registered on Core: b200/b200-1, b200/b200-2" in output


def test_different_products_fail(core: CoreDouble, lab_site: Site) -> None:
    token = register(core, lab_site)
    stored = core.state.products["lab"]["cpu/cpu-2"]
    stored["memoryInGigs"] = 64
    code, output = run("--core-url", core.url, env={"BITTEN_UCLOUD_REFRESH_TOKEN": token})
    assert code == 1
    assert "cpu/cpu-2 differs on Core: memoryInGigs: site 1, Core 64" in output


def test_wrong_token_fails_clearly(core: CoreDouble, lab_site: Site) -> None:
    register(core, lab_site)
    code, output = run("--core-url", core.url, env={"BITTEN_UCLOUD_REFRESH_TOKEN": "not-the-token"})
    assert code == 3
    assert "rejected the provider refresh token" in output
    assert "not-the-token" not in output


def test_unreachable_core_fails_clearly() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, output = run("--core-url", f"http://127.0.0.1:{port}", "--timeout", "2", "--retries", "1",
                       env={"BITTEN_UCLOUD_REFRESH_TOKEN": "x"})
    assert code == 4
    assert "is unreachable" in output


def test_no_token_is_invalid_input() -> None:
    code, output = run()
    assert code == 2
    assert "BITTEN_UCLOUD_REFRESH_TOKEN" in output


def test_tls_check_with_ca_file(tls_files: ServerTls, lab_site: Site) -> None:
    with CoreDouble("127.0.0.1", 0, {ADMIN}, str(tls_files.cert), str(tls_files.key)) as core:
        client = CoreClient(core.url, ca_file=str(tls_files.ca))
        made = client.retrieve_provider(client.create_provider(ProviderSpec("lab", "lab.example"), ADMIN, "p"),
                                        ADMIN)
        client.register_products(imconfig.expected_products(lab_site), client.refresh(made.refresh_token))
        code, output = run("--core-url", core.url, "--ca-file", str(tls_files.ca),
                           env={"BITTEN_UCLOUD_REFRESH_TOKEN": made.refresh_token})
        assert code == 0, output
