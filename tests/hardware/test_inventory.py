"""Inventory parsing against DMTF's public-rackmount1 mockup (read-only), and what the emulator reports."""

from __future__ import annotations

from collections.abc import Callable

from bitten.core.redfish.endpoint import Endpoint
from bitten.hardware import run_node
from bitten.hardware.fleet import Target
from bitten.hardware.plan import DesiredBmcState, Options
from bitten.lab.doubles.bmc_emulator import SystemSpec

from .conftest import CREDS, Emulator, Pki


def mockup_target(url: str, desired: DesiredBmcState | None = None) -> Target:
    return Target(Endpoint("web483", url, "437XR1138R2", "generic"), desired or DesiredBmcState(), CREDS)


def test_inventory_from_the_dmtf_rackmount_mockup(mockup: str, pki: Pki) -> None:
    result = run_node(mockup_target(mockup), "inventory", settings=pki.settings)
    assert result.ok, result.error
    inv = result.inventory
    assert inv is not None
    assert (inv.manufacturer, inv.model, inv.serial, inv.sku) == ("Contoso", "3500", "437XR1138R2", "8675309")
    assert inv.uuid == "38947555-7742-3448-3784-823347823834"
    assert inv.power == "On" and inv.bios_version == "P79 v1.45 (12/06/2017)"
    # MACAddress and PermanentMACAddress of every interface, lower case, without duplicates (VLAN1 repeats one)
    assert inv.macs == ("12:44:6a:3b:04:11", "12:44:6a:3b:88:90", "aa:bb:cc:dd:ee:00", "aa:bb:cc:dd:ee:fe")
    # CPU2 is Absent and FPGA1 is not a CPU
    assert [(p.id, p.cores, p.threads) for p in inv.processors] == [("CPU1", 8, 16)]
    # DIMM4 is Absent
    assert inv.memory_gib == 96 and inv.dimms == 3
    assert inv.gpus == ()
    assert inv.as_dict()["cores"] == 8


def test_plan_against_the_mockup_reads_bios_and_pending(mockup: str, pki: Pki) -> None:
    # the mockup's Bios/Settings already stages NicBoot2 and ProcTurboMode (among others)
    desired = DesiredBmcState(bios={"ProcTurboMode": "Disabled", "PowerProfile": "MaxPerf", "NicBoot2": "NetworkBoot",
                            "ProcHyperthreading": "Disabled"}, boot_mac="12:44:6a:3b:04:11")
    result = run_node(mockup_target(mockup, desired), "plan", Options(), settings=pki.settings)
    assert result.ok, result.error
    plan = result.plan
    assert plan is not None and not plan.problems
    assert plan.pending == {"NicBoot2": "NetworkBoot", "ProcTurboMode": "Disabled"}
    assert [(c.item, c.current, c.desired) for c in plan.of("bios")] == [("ProcHyperthreading", "Enabled", "Disabled")]
    assert plan.reset_type is None, "the mockup system is On; nothing restarts it without reboot"


def test_emulator_inventory(start_emulator: Callable[..., Emulator], pki: Pki) -> None:
    emu = start_emulator([SystemSpec("lab-cpu01", macs=("02:1a:b0:00:00:31",), cpus=1, cores_per_cpu=2,
                                     memory_gib=1)])
    result = run_node(Target(emu.endpoint("lab-cpu01"), DesiredBmcState(), CREDS), "inventory", settings=pki.settings)
    assert result.ok, result.error
    inv = result.inventory
    assert inv is not None
    assert inv.macs == ("02:1a:b0:00:00:31",)
    assert inv.cores == 2 and inv.memory_gib == 1
    assert inv.model is None, "the sushy-tools emulator reports no Model"
