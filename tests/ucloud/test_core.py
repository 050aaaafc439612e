"""The Core client and the provider logic against the UCloud/Core test double (loopback only)."""

from __future__ import annotations

import socket

import jwt
import pytest

from bitten.core.pki import ServerTls
from bitten.lab.doubles.ucloud_core import CoreDouble, public_key_pem
from bitten.ucloud import provider
from bitten.ucloud.core import (
    CoreAuthError,
    CoreClient,
    CoreConflict,
    CoreError,
    CoreNotFound,
    CoreUnreachable,
    ProviderSpec,
)

from .conftest import ADMIN

SPEC = ProviderSpec(name="lab", domain="lab-login.lab.bitten.test", port=443)


def test_provider_create_retrieve_and_rules(core: CoreDouble) -> None:
    client = CoreClient(core.url)
    resource_id = client.create_provider(SPEC, ADMIN, "project-1")
    found = client.retrieve_provider(resource_id, ADMIN)
    assert found.spec == SPEC and found.refresh_token and found.public_key
    with pytest.raises(CoreConflict, match="Provider already exists with that name"):
        client.create_provider(SPEC, ADMIN, "project-1")
    with pytest.raises(CoreError, match="Domain not valid"):
        client.create_provider(ProviderSpec("x", "not a host"), ADMIN, "project-1")
    with pytest.raises(CoreError, match="Port not valid"):
        client.create_provider(ProviderSpec("y", "y.example", port=70000), ADMIN, "project-1")
    with pytest.raises(CoreError, match="Project not set"):
        client.create_provider(ProviderSpec("z", "z.example"), ADMIN, "")
    with pytest.raises(CoreAuthError):
        client.create_provider(ProviderSpec("z", "z.example"), "not-admin", "p")
    with pytest.raises(CoreNotFound):
        client.retrieve_provider("999", ADMIN)


def test_refresh_gives_rs256_provider_token(core: CoreDouble) -> None:
    client = CoreClient(core.url)
    made = client.retrieve_provider(client.create_provider(SPEC, ADMIN, "p"), ADMIN)
    token = client.refresh(made.refresh_token)
    claims = jwt.decode(token, public_key_pem(made.public_key), algorithms=["RS256"], audience="all:write",
                        issuer="cloud.sdu.dk")
    assert claims["sub"] == "#P_lab" and claims["role"] == "PROVIDER"
    assert claims["exp"] - claims["iat"] == 600
    with pytest.raises(CoreAuthError, match="rejected the provider refresh token"):
        client.refresh("wrong")


def test_products_register_and_browse_with_paging(core: CoreDouble) -> None:
    client = CoreClient(core.url)
    made = client.retrieve_provider(client.create_provider(SPEC, ADMIN, "p"), ADMIN)
    token = client.refresh(made.refresh_token)
    category = {"name": "cpu", "provider": "lab", "productType": "COMPUTE", "accountingFrequency": "PERIODIC_MINUTE",
                "accountingUnit": {"name": "Core", "namePlural": "Core", "floatingPoint": False,
                                   "displayFrequencySuffix": True}, "freeToUse": False}
    products = [{"type": "compute", "name": f"cpu-{n}", "category": category, "productType": "COMPUTE", "cpu": n,
                 "price": n} for n in range(1, 8)]
    client.register_products(products, token)
    assert [p["name"] for p in client.browse_products("lab", token=token, per_page=3)] == [
        f"cpu-{n}" for n in range(1, 8)]
    assert client.browse_products("other") == []
    foreign = [{**products[0], "category": {**category, "provider": "someone-else"}}]
    with pytest.raises(CoreAuthError, match="own products"):
        client.register_products(foreign, token)
    changed = [{**products[0], "category": {**category, "accountingFrequency": "PERIODIC_HOUR"}}]
    with pytest.raises(CoreError, match="cannot change its accountingFrequency"):
        client.register_products(changed, token)
    with pytest.raises(CoreAuthError):
        client.register_products(products, "forged.token.value")


def test_ensure_creates_adopts_and_updates(core: CoreDouble) -> None:
    client = CoreClient(core.url)
    first = provider.ensure(client, SPEC, ADMIN, "p")
    assert first.action == "created" and first.changed
    again = provider.ensure(client, SPEC, ADMIN, "p")
    assert again.action == "adopted" and not again.changed
    assert again.provider.refresh_token == first.provider.refresh_token
    moved = ProviderSpec(name="lab", domain="frontend.lab.bitten.test", port=8443)
    planned = provider.ensure(client, moved, ADMIN, "p", check_only=True)
    assert planned.action == "updated" and client.find_provider("lab", ADMIN).spec == SPEC  # type: ignore[union-attr]
    updated = provider.ensure(client, moved, ADMIN, "p")
    assert updated.action == "updated" and updated.provider.spec == moved
    assert len(client.browse_providers(ADMIN)) == 1


def test_retries_5xx_then_succeeds_and_reports_unavailable(core: CoreDouble) -> None:
    client = CoreClient(core.url, backoff=0.01)
    core.state.fail_next = 2
    assert client.browse_products("lab") == []
    core.state.fail_next = 50
    with pytest.raises(CoreUnreachable, match="503"):
        client.browse_products("lab")


def test_unreachable_core_is_reported() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = CoreClient(f"http://127.0.0.1:{port}", retries=1, backoff=0.01, timeout=2)
    with pytest.raises(CoreUnreachable, match=f"127.0.0.1:{port} is unreachable"):
        client.refresh("x")


def test_tls_verified_with_the_given_ca(tls_files: ServerTls) -> None:
    with CoreDouble("127.0.0.1", 0, {ADMIN}, str(tls_files.cert), str(tls_files.key)) as double:
        assert double.url.startswith("https://")
        ok = CoreClient(double.url, ca_file=str(tls_files.ca))
        assert ok.browse_products("lab") == []
        untrusted = CoreClient(double.url, retries=0)
        with pytest.raises(CoreUnreachable, match="TLS to UCloud/Core"):
            untrusted.browse_products("lab")
