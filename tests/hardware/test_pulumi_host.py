"""Pulumi layer 3: Pulumi's own dynamic-provider host (``python -m pulumi.dynamic``) over gRPC, the process and
protocol the engine uses, driving the provider against the emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from bitten.hardware.pulumi_provider import RedfishNodeProvider
from bitten.lab.doubles.bmc_emulator import SystemSpec

from .conftest import Emulator, Pki
from .test_pulumi_provider import MAC, props

URN = "urn:pulumi:lab::bitten-hardware::pulumi-python:dynamic/bitten:RedfishNode::lab-gpu01"


@pytest.fixture
def host() -> Iterator[provider_pb2_grpc.ResourceProviderStub]:
    env = {**os.environ, "PULUMI_PROJECT": "bitten-hardware"}
    proc = subprocess.Popen([sys.executable, "-m", "pulumi.dynamic"], stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(channel).result(timeout=30)
    yield provider_pb2_grpc.ResourceProviderStub(channel)
    channel.close()
    proc.terminate()
    proc.wait(10)


def struct(values: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(values)
    return out


def plain(message: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(message)


def test_the_engine_protocol(host: provider_pb2_grpc.ResourceProviderStub,
                             start_emulator: Callable[..., Emulator], pki: Pki) -> None:
    emu = start_emulator([SystemSpec("lab-gpu01", macs=(MAC,))])
    news = {**props(emu, pki), "__provider": serialize_provider(RedfishNodeProvider())}

    checked = host.Check(provider_pb2.CheckRequest(urn=URN, olds=struct({}), news=struct(news)))
    assert list(checked.failures) == []

    created = host.Create(provider_pb2.CreateRequest(urn=URN, properties=checked.inputs))
    assert created.id == f"{emu.url}/redfish/v1/Systems/lab-gpu01"
    outs = plain(created.properties)
    assert outs["power_state"] == "On" and outs["macs"] == [MAC]
    assert outs["observed_bios"] == {"ProcSMT": "Disabled", "WorkloadProfile": "HighPerformanceCompute"}

    same = host.Diff(provider_pb2.DiffRequest(id=created.id, urn=URN, olds=created.properties, news=checked.inputs))
    assert same.changes == provider_pb2.DiffResponse.DIFF_NONE

    changed_inputs = struct({**news, "power": "Off"})
    diff = host.Diff(provider_pb2.DiffRequest(id=created.id, urn=URN, olds=created.properties, news=changed_inputs))
    assert diff.changes == provider_pb2.DiffResponse.DIFF_SOME and list(diff.replaces) == []

    updated = host.Update(provider_pb2.UpdateRequest(id=created.id, urn=URN, olds=created.properties,
                                                     news=changed_inputs))
    assert plain(updated.properties)["power_state"] == "Off"

    read = host.Read(provider_pb2.ReadRequest(id=created.id, urn=URN, properties=updated.properties))
    assert read.id == created.id and plain(read.properties)["power_state"] == "Off"

    before = emu.faults.requests
    host.Delete(provider_pb2.DeleteRequest(id=created.id, urn=URN, properties=read.properties))
    assert emu.faults.requests == before


def test_failures_reach_the_engine_with_the_bmc_named(host: provider_pb2_grpc.ResourceProviderStub,
                                                      start_emulator: Callable[..., Emulator], pki: Pki) -> None:
    emu = start_emulator([SystemSpec("lab-gpu01", macs=("02:00:00:00:00:99",))])
    news = {**props(emu, pki), "__provider": serialize_provider(RedfishNodeProvider())}
    with pytest.raises(grpc.RpcError) as failure:
        host.Create(provider_pb2.CreateRequest(urn=URN, properties=struct(news)))
    details = failure.value.details()  # type: ignore[attr-defined]
    assert "(host lab-gpu01)" in details and "may point at another node" in details
