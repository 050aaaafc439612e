"""stacks/ucloud: the program under Pulumi's mocks, the provider's CRUD against the Core test double, and the same
provider run by Pulumi's dynamic-provider host (python -m pulumi.dynamic) over gRPC, as the engine runs it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pulumi
import pytest

from bitten.lab.doubles.ucloud_core import CoreDouble
from bitten.site import Site
from bitten.ucloud.core import CoreClient
from bitten.ucloud.dynamic import ProviderOnCore

from .conftest import ADMIN, ROOT

sys.path.insert(0, str(ROOT / "stacks" / "ucloud"))


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        return "1", {**args.inputs, "resource_id": "1", "refresh_token": "rt", "public_key": "pk"}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


def props(core_url: str, **extra: Any) -> dict[str, Any]:
    return {"core_url": core_url, "ca_file": "", "admin_token": ADMIN, "project": "lab", "name": "lab",
            "domain": "lab-login.lab.bitten.test", "port": 443, "https": True, **extra}


@pulumi.runtime.test
def test_program_under_mocks(lab_site: Site) -> Any:
    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project="bitten-ucloud", stack="lab", preview=False)
    from program import build

    outputs = build(lab_site, pulumi.Output.secret("admin"), "lab")
    assert outputs["provider_id"] == "lab"
    assert outputs["products"] == ["b200/b200-1", "b200/b200-2", "cpu/cpu-1", "cpu/cpu-2", "storage/storage"]

    def check(values: list[Any]) -> None:
        refresh_secret, key_secret, id_secret = values
        assert (refresh_secret, key_secret, id_secret) == (True, True, False)
        assert len(mocks.resources) == 1
        args = mocks.resources[0]
        assert args.typ == "pulumi-python:dynamic:Resource"
        assert args.inputs["name"] == "lab" and args.inputs["domain"] == "lab-login.lab.bitten.test"
        assert args.inputs["port"] == 443 and args.inputs["core_url"] == "https://10.77.0.1:8445"
        assert args.inputs["__provider"]  # the provider was serialised (dill) for the engine's host

    async def flags() -> list[bool]:
        return [await outputs[k].is_secret() for k in ("refresh_token", "public_key", "resource_id")]  # type: ignore[union-attr]

    return pulumi.Output.from_input(asyncio.ensure_future(flags())).apply(check)


def test_provider_crud_against_core_double(core: CoreDouble) -> None:
    provider = ProviderOnCore()
    created = provider.create(props(core.url))
    assert created.id == "1" and created.outs["refresh_token"] and created.outs["public_key"]
    again = provider.create(props(core.url))  # an existing provider is adopted, not duplicated
    assert again.id == "1" and again.outs["refresh_token"] == created.outs["refresh_token"]
    read = provider.read("1", created.outs)
    assert read.outs["public_key"] == created.outs["public_key"]
    moved = props(core.url, domain="frontend.lab.bitten.test")
    diff = provider.diff("1", created.outs, moved)
    assert diff.changes and diff.replaces == []
    renamed = provider.diff("1", created.outs, props(core.url, name="lab2"))
    assert renamed.replaces == ["name"]
    assert not provider.diff("1", created.outs, props(core.url, admin_token="rotated")).changes
    updated = provider.update("1", created.outs, moved)
    assert updated.outs["domain"] == "frontend.lab.bitten.test"
    assert CoreClient(core.url).retrieve_provider("1", ADMIN).spec.domain == "frontend.lab.bitten.test"
    provider.delete("1", updated.outs)  # Core cannot delete providers: the provider stays
    assert CoreClient(core.url).retrieve_provider("1", ADMIN).spec.name == "lab"
    assert provider.read("42", created.outs).id is None


@pytest.fixture
def dynamic_host() -> Iterator[Any]:
    """Pulumi's dynamic-provider host as the engine starts it, and a gRPC stub talking to it."""
    import grpc
    from pulumi.runtime.proto import provider_pb2_grpc

    proc = subprocess.Popen([sys.executable, "-m", "pulumi.dynamic"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PULUMI_PROJECT": "bitten-ucloud"})
    assert proc.stdout is not None
    port = int(proc.stdout.readline().decode().strip())
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield provider_pb2_grpc.ResourceProviderStub(channel)
    finally:
        channel.close()
        proc.terminate()
        proc.wait(10)


def test_dynamic_provider_host_over_grpc(core: CoreDouble, dynamic_host: Any) -> None:
    from pulumi.dynamic.dynamic import serialize_provider
    from pulumi.runtime import proto, rpc

    loop = asyncio.new_event_loop()
    try:
        serialized = serialize_provider(ProviderOnCore())
        inputs = loop.run_until_complete(rpc.serialize_properties({**props(core.url), "__provider": serialized},
                                                                  {}))
        dynamic_host.Configure(proto.ConfigureRequest(acceptSecrets=False))
        urn = "urn:pulumi:lab::bitten-ucloud::pulumi-python:dynamic:Resource::lab"
        created = dynamic_host.Create(proto.CreateRequest(urn=urn, properties=inputs))
        assert created.id == "1"
        outs = rpc.deserialize_properties(created.properties)
        assert outs["refresh_token"] == CoreClient(core.url).retrieve_provider("1", ADMIN).refresh_token
        news = loop.run_until_complete(rpc.serialize_properties(
            {**props(core.url, port=8443), "__provider": serialized}, {}))
        diff = dynamic_host.Diff(proto.DiffRequest(id="1", urn=urn, olds=created.properties, news=news))
        assert diff.changes == proto.DiffResponse.DIFF_SOME and list(diff.replaces) == []
        updated = dynamic_host.Update(proto.UpdateRequest(id="1", urn=urn, olds=created.properties, news=news))
        assert rpc.deserialize_properties(updated.properties)["port"] == 8443
        read = dynamic_host.Read(proto.ReadRequest(id="1", urn=urn, properties=updated.properties))
        assert read.id == "1"
    finally:
        loop.close()
