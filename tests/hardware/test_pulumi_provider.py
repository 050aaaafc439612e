"""Pulumi layer 2: the dynamic provider's check/create/diff/read/update/delete against the emulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bitten.hardware import run_node
from bitten.hardware.fleet import Target
from bitten.hardware.plan import DesiredBmcState
from bitten.hardware.pulumi_provider import RedfishNodeProvider
from bitten.lab.doubles.bmc_emulator import SystemSpec

from .conftest import CREDS, PASSWORD, USER, Emulator, Pki

MAC = "02:1a:b0:00:00:21"


def props(emu: Emulator, pki: Pki, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "host": "lab-gpu01", "url": emu.url, "system_id": "lab-gpu01", "flavour": "generic",
        "username": USER, "password": PASSWORD, "ca_pem": pki.ca.read_text(), "verify": True,
        "bios": {"ProcSMT": "Disabled", "WorkloadProfile": "HighPerformanceCompute"},
        "boot": {"mode": "UEFI", "target": "Pxe"}, "power": "On", "boot_mac": MAC,
        "check_boot_mac": True, "reboot": False, "timeout": 5.0, "power_timeout": 10.0, "retries": 2,
    }
    base.update(over)
    return base


def test_crud_and_drift(start_emulator: Callable[..., Emulator], pki: Pki) -> None:
    emu = start_emulator([SystemSpec("lab-gpu01", macs=(MAC,))])
    provider = RedfishNodeProvider()
    news = props(emu, pki)
    assert provider.check({}, news).failures == []

    created = provider.create(news)
    assert created.id == f"{emu.url}/redfish/v1/Systems/lab-gpu01"
    outs = created.outs
    assert outs is not None
    assert outs["power_state"] == "On"
    assert outs["observed_bios"] == {"ProcSMT": "Disabled", "WorkloadProfile": "HighPerformanceCompute"}
    assert outs["macs"] == [MAC] and any("power state: Off -> On" in line for line in outs["changes"])

    assert provider.diff(created.id, outs, news).changes is False

    # a desired change is an update in place
    changed = props(emu, pki, bios={"ProcSMT": "Enabled", "WorkloadProfile": "HighPerformanceCompute"})
    diff = provider.diff(created.id, outs, changed)
    assert diff.changes is True and diff.replaces == []
    updated = provider.update(created.id, outs, changed).outs
    assert updated is not None
    # the node is running: the new value waits for the next reboot, and is reported as pending
    assert updated["pending"] == {"ProcSMT": "Enabled"}
    assert updated["observed_bios"]["ProcSMT"] == "Enabled"
    assert provider.diff(created.id, updated, changed).changes is False

    # drift: someone powers the node off behind Pulumi's back; refresh sees it, the next up corrects it
    result = run_node(Target(emu.endpoint("lab-gpu01"), DesiredBmcState(power="Off"), CREDS), "apply",
                      settings=pki.settings)
    assert result.ok and result.power == "Off"
    refreshed = provider.read(created.id, updated)
    assert refreshed.id == created.id and refreshed.outs is not None
    assert refreshed.outs["power_state"] == "Off"
    assert provider.diff(created.id, refreshed.outs, changed).changes is True
    healed = provider.update(created.id, refreshed.outs, changed).outs
    assert healed is not None and healed["power_state"] == "On"

    # another BMC is another machine: replace
    assert provider.diff(created.id, healed, props(emu, pki, url="https://10.0.0.9")).replaces == ["url"]

    # delete forgets the node and touches nothing
    before = emu.faults.requests
    provider.delete(created.id, healed)
    assert emu.faults.requests == before


def test_check_reports_bad_inputs(start_emulator: Callable[..., Emulator], pki: Pki) -> None:
    emu = start_emulator([SystemSpec("lab-gpu01")])
    failures = RedfishNodeProvider().check({}, props(emu, pki, boot={"target": "Cd"}, power="Sleeping",
                                                     password=""))
    reasons = {f.property: f.reason for f in failures.failures}
    assert set(reasons) == {"boot", "power", "password"}
    assert "image_url" in reasons["boot"]


def test_a_failing_bmc_fails_the_operation_with_its_name(start_emulator: Callable[..., Emulator], pki: Pki) -> None:
    emu = start_emulator([SystemSpec("lab-gpu01", macs=(MAC,))])
    with pytest.raises(RuntimeError, match=r"\(host lab-gpu01\): .*authentication failed as user"):
        RedfishNodeProvider().create(props(emu, pki, password="wrong"))
