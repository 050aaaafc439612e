"""Pulumi layer 1: the stack's program under Pulumi's mocks — resources, inputs from the site model, secrets,
and the provider as the engine would ship it (dill, in ``__provider``)."""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import dill
import pulumi
import yaml

from bitten.capabilities import load_site
from bitten.hardware.pulumi_provider import RedfishNodeProvider
from bitten.hardware.stack import declare

from .conftest import BARE_HOSTS, LAB_HOSTS, REPO

sys.path.insert(0, str(REPO / "stacks" / "hardware"))
from bmc_program import program

DYNAMIC = "pulumi-python:dynamic/bitten:RedfishNode"


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        outputs = {**args.inputs, "power_state": "On", "macs": [args.inputs.get("boot_mac")], "serial": "SN-1"}
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None


MOCKS = Mocks()
pulumi.runtime.set_mocks(MOCKS, project="bitten-hardware", stack="lab", preview=False)


@pulumi.runtime.test
def test_one_node_resource_per_lab_node() -> pulumi.Output[Any]:
    MOCKS.resources.clear()
    site = load_site(REPO / "inventory" / "lab")
    nodes = declare(site, lambda host: ("bitten-lab", f"pw-{host}"), ca_pem="-----BEGIN CERTIFICATE-----")

    async def check(_: Any) -> None:
        by_name = {r.name: r for r in MOCKS.resources}
        assert set(by_name) == set(LAB_HOSTS) | set(BARE_HOSTS)
        assert {r.typ for r in MOCKS.resources} == {DYNAMIC}
        gpu = by_name["lab-gpu01"].inputs
        assert gpu["url"] == "https://10.77.0.1:8443" and gpu["system_id"] == "lab-gpu01"
        assert gpu["flavour"] == "generic"
        assert gpu["bios"] == {"WorkloadProfile": "HighPerformanceCompute", "ProcSMT": "Disabled"}
        assert gpu["boot"] == {"mode": "UEFI", "target": "Pxe"}
        assert gpu["power"] == "On" and gpu["boot_mac"] == LAB_HOSTS["lab-gpu01"]
        assert by_name["lab-cpu01"].inputs["bios"] == {"WorkloadProfile": "HighPerformanceCompute"}
        # the provider travels in the inputs, serialised with dill, and holds no secret
        shipped = base64.b64decode(gpu["__provider"])
        assert isinstance(dill.loads(shipped), RedfishNodeProvider)
        assert b"pw-lab-gpu01" not in shipped
        # the password is a secret input and a secret output
        assert await nodes["lab-gpu01"].password.is_secret()
        assert not await nodes["lab-gpu01"].power_state.is_secret()

    return pulumi.Output.all(*(n.id for n in nodes.values())).apply(check)


@pulumi.runtime.test
def test_reference_site_declares_every_node_with_a_bmc() -> pulumi.Output[Any]:
    MOCKS.resources.clear()
    site = load_site(REPO / "inventory" / "bitten")
    nodes = declare(site, lambda host: ("Administrator", "x"))

    def check(_: Any) -> None:
        assert len(MOCKS.resources) == len(nodes) == 51
        xd685 = next(r.inputs for r in MOCKS.resources if r.name == "gpu16")
        assert xd685["flavour"] == "hpe_ilo" and xd685["url"] == "https://10.21.1.16"
        assert xd685["bios"]["ProcAmdIoVt"] == "Enabled"

    return pulumi.Output.all(*(n.id for n in nodes.values())).apply(check)


@pulumi.runtime.test
def test_program_reads_its_config_and_exports_inventory(tmp_path: Path) -> pulumi.Output[Any]:
    MOCKS.resources.clear()
    creds = tmp_path / "credentials.yml"
    creds.write_text(yaml.safe_dump({"username": "bitten-lab", "password": "from-the-lab-file"}))
    creds.chmod(0o600)
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    project = REPO / "stacks" / "hardware"
    pulumi.runtime.set_all_config({
        "bitten-hardware:inventory": "../../inventory/lab", "bitten-hardware:bmcCredentialsFile": str(creds),
        "bitten-hardware:bmcCaFile": str(ca), "bitten-hardware:limit": '["gpu_nodes"]',
        "bitten-hardware:powerTimeout": "60",
    })
    try:
        nodes = program(project)
    finally:
        pulumi.runtime.set_all_config({})

    async def check(_: Any) -> None:
        assert sorted(nodes) == ["lab-gpu01", "lab-gpu02"]
        inputs = MOCKS.resources[0].inputs
        assert inputs["ca_pem"].startswith("-----BEGIN CERTIFICATE-----")
        assert inputs["power_timeout"] == 60 and inputs["username"] == "bitten-lab"
        assert await nodes["lab-gpu01"].password.is_secret()
        macs = await nodes["lab-gpu01"].macs.future()
        assert macs == [LAB_HOSTS["lab-gpu01"]]

    return pulumi.Output.all(*(n.id for n in nodes.values())).apply(check)
