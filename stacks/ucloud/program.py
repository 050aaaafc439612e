"""The stack's wiring, importable by tests (Pulumi's mocks) without running __main__."""

from __future__ import annotations

import os
from pathlib import Path

import pulumi

from bitten.capabilities import load_site
from bitten.site import Site
from bitten.ucloud import imconfig
from bitten.ucloud.dynamic import UCloudProvider
from bitten.ucloud.provider import spec_from_site

ENV_ADMIN_TOKEN = "BITTEN_UCLOUD_ADMIN_TOKEN"  # noqa: S105 - a variable name


def settings_from_config(here: Path) -> tuple[Site, pulumi.Input[str], str, str | None, str | None]:
    config = pulumi.Config("ucloud")
    inventory = here / (config.get("inventory") or f"../../inventory/{pulumi.get_stack()}")
    token: pulumi.Input[str] | None = config.get_secret("adminToken")
    if token is None:
        env = os.environ.get(ENV_ADMIN_TOKEN)
        if not env:
            raise pulumi.RunError("no admin token: pulumi config set --secret ucloud:adminToken, or "
                                  f"${ENV_ADMIN_TOKEN}")
        token = pulumi.Output.secret(env)
    ca_file = config.get("caFile")
    return (load_site(inventory), token, config.require("project"),
            str((here / ca_file).resolve()) if ca_file else None, config.get("coreUrl"))


def build(site: Site, admin_token: pulumi.Input[str], project: str, ca_file: str | None = None,
          core_url: str | None = None) -> dict[str, pulumi.Output[object] | object]:
    """Declare the provider; returns the stack's outputs (credentials wrapped as secrets)."""
    if site.ucloud is None:
        raise pulumi.RunError(f"site {site.info.name} sets no bitten_ucloud")
    spec = spec_from_site(site)
    resource = UCloudProvider(spec.name, core_url=core_url or site.ucloud.core_url, spec=spec,
                              admin_token=admin_token, project=project, ca_file=ca_file)
    outputs: dict[str, pulumi.Output[object] | object] = {
        "provider_id": spec.name,
        "resource_id": resource.resource_id,
        # secret in the state through additional_secret_outputs, and in the stack's outputs through this
        "refresh_token": pulumi.Output.secret(resource.refresh_token),
        "public_key": pulumi.Output.secret(resource.public_key),
        "products": [f"{p['category']['name']}/{p['name']}" for p in imconfig.expected_products(site)],
    }
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs
