"""Pulumi front end of bitten.ucloud.provider: the provider on UCloud/Core as a dynamic resource.

Inputs: Core's URL (and CA), the admin token and project that may create providers, and the provider's name,
domain and port (from the site's ``bitten_ucloud``). Outputs: Core's resource id, and the provider's
``refresh_token`` and ``public_key`` as secrets (what the Integration Module's server.yml and ucloud_key.pub need).

- create: adopts a provider of that name when Core has one, else creates it (bitten.ucloud.provider.ensure);
- diff: a new name replaces the provider; domain, port or https are updated in place; credentials and the URL of
  Core are not part of the provider and change nothing;
- read: refreshes the outputs from Core (a provider that disappeared is dropped from the state);
- delete: Core cannot delete providers; the resource leaves the stack and the provider stays on Core (ask UCloud's
  staff to remove it).

The class lives in the installed package so that Pulumi's dynamic-provider host (``python -m pulumi.dynamic``)
can import it when it deserialises the provider.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from bitten.ucloud import provider as core_provider
from bitten.ucloud.core import CoreClient, Provider, ProviderSpec

#: outputs that hold credentials
SECRET_OUTPUTS = ["refresh_token", "public_key", "admin_token"]
REPLACE_ON = ("name",)
UPDATE_ON = ("domain", "port", "https")


def _spec(props: dict[str, Any]) -> ProviderSpec:
    return ProviderSpec(name=str(props["name"]), domain=str(props["domain"]), port=int(props["port"]),
                        https=bool(props.get("https", True)))


def _client(props: dict[str, Any]) -> CoreClient:
    return CoreClient(str(props["core_url"]), ca_file=props.get("ca_file") or None,
                      retries=int(props.get("retries", 4)))


def _outs(props: dict[str, Any], found: Provider) -> dict[str, Any]:
    return {**props, "resource_id": found.resource_id, "name": found.spec.name, "domain": found.spec.domain,
            "port": found.spec.port, "https": found.spec.https, "refresh_token": found.refresh_token,
            "public_key": found.public_key}


class ProviderOnCore(ResourceProvider):
    """CRUD of a provider on UCloud/Core (see the module docstring)."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        with _client(props) as client:
            outcome = core_provider.ensure(client, _spec(props), str(props["admin_token"]), str(props["project"]))
        return CreateResult(id_=outcome.provider.resource_id, outs=_outs(props, outcome.provider))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [key for key in REPLACE_ON if olds.get(key) != news.get(key)]
        changes = replaces + [key for key in UPDATE_ON if olds.get(key) != news.get(key)]
        return DiffResult(changes=bool(changes), replaces=replaces, stables=["resource_id"],
                          delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        with _client(news) as client:
            client.update_provider(_id, _spec(news), str(news["admin_token"]))
            found = client.retrieve_provider(_id, str(news["admin_token"]))
        return UpdateResult(outs=_outs(news, found))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        with _client(props) as client:
            found = core_provider.read(client, id_, str(props["admin_token"]))
        if found is None:
            return ReadResult(id_=None, outs={})
        return ReadResult(id_=id_, outs=_outs(props, found))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Core has no delete for providers: nothing to do (the provider stays registered)."""


class UCloudProvider(Resource):
    """The site's provider on UCloud/Core."""

    resource_id: pulumi.Output[str]
    refresh_token: pulumi.Output[str]
    public_key: pulumi.Output[str]

    def __init__(self, name: str, *, core_url: pulumi.Input[str], spec: ProviderSpec,
                 admin_token: pulumi.Input[str], project: pulumi.Input[str], ca_file: str | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        props = {
            "core_url": core_url, "ca_file": ca_file or "", "admin_token": pulumi.Output.secret(admin_token),
            "project": project, "name": spec.name, "domain": spec.domain, "port": spec.port, "https": spec.https,
            "resource_id": None, "refresh_token": None, "public_key": None,
        }
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS))
        super().__init__(ProviderOnCore(), name, props, opts)
