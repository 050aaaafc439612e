"""HPE iLO specifics against the iLO-shaped fake (HPE's iLO 5 sample resources, sessions, Oem.Hpe)."""

from __future__ import annotations

from collections.abc import Callable

from bitten.core.redfish.connection import Connection
from bitten.hardware import run_node
from bitten.hardware.fleet import Target
from bitten.hardware.plan import DesiredBmcState, Options
from bitten.lab.doubles.ilo import BIOS_SETTINGS, SESSIONS, VMEDIA
from bitten.site.model import Boot

from .conftest import CREDS, Ilo, Pki

MAC = "94:40:c9:68:50:01"
XD685 = DesiredBmcState(bios={"WorkloadProfile": "HighPerformanceCompute", "ProcSMT": "Disabled",
                              "ProcAmdIoVt": "Enabled", "Sriov": "Enabled", "BootMode": "Uefi"},
                        boot=Boot(target="Pxe"), power="On", boot_mac=MAC)


def test_apply_through_sessions_and_the_settings_object(start_ilo: Callable[..., Ilo], pki: Pki) -> None:
    ilo = start_ilo(macs=(MAC,), gpus=8)
    target = Target(ilo.endpoint(), XD685, CREDS)
    result = run_node(target, "apply", settings=pki.settings)
    assert result.ok, result.error
    assert result.changed and result.power == "On"
    # the BIOS PATCH went to the object @Redfish.Settings names: lower case, trailing slash on iLO
    assert ilo.fake.calls[("PATCH", BIOS_SETTINGS.lower().rstrip("/"))] == 1
    # iLO applied the staged values while booting, and consumed the one-time boot
    assert ilo.fake.bios["ProcSMT"] == "Disabled" and not ilo.fake.staged
    assert ilo.fake.boots == 1 and ilo.fake.boot_enabled == "Disabled"
    # one session per run, logged out at the end, never basic auth
    assert ilo.fake.calls[("POST", SESSIONS.lower().rstrip("/"))] == 1
    assert ilo.fake.sessions == {}

    second = run_node(target, "apply", settings=pki.settings)
    assert second.ok and not second.changed


def test_boot_override_never_sends_the_mode_to_ilo(start_ilo: Callable[..., Ilo], pki: Pki) -> None:
    # the fake refuses BootSourceOverrideMode (iLO takes the boot mode from the BIOS attribute BootMode)
    ilo = start_ilo(macs=(MAC,), power_delay=0.3)
    with Connection(ilo.endpoint(), CREDS, pki.tls) as conn:
        from bitten.hardware.node import BmcNode

        node = BmcNode(conn)
        plan, observed = node.plan(XD685)
        assert observed.boot_mode is None
        assert ("boot", "override") in {(c.area, c.item) for c in plan.changes}
        node.apply(XD685, Options(wait=False))
    assert ilo.fake.boot_target == "Pxe" and ilo.fake.boot_enabled == "Once"


def test_virtual_media_under_the_manager_with_boot_on_next_reset(start_ilo: Callable[..., Ilo], pki: Pki) -> None:
    ilo = start_ilo(macs=(MAC,), power_delay=60)
    desired = DesiredBmcState(boot=Boot(target="Cd", image_url="http://10.20.0.5/images/rocky.iso"), boot_mac=MAC)
    result = run_node(Target(ilo.endpoint(), desired, CREDS), "apply", Options(wait=False), settings=pki.settings)
    assert result.ok, result.error
    assert ilo.fake.calls[("PATCH", (VMEDIA + "2").lower())] == 1
    assert ilo.fake.media_image == "http://10.20.0.5/images/rocky.iso"
    assert ilo.fake.boot_on_next_reset is True
    assert (ilo.fake.boot_target, ilo.fake.boot_enabled) == ("Cd", "Once")


def test_pending_settings_from_the_sample_are_reported(start_ilo: Callable[..., Ilo], pki: Pki) -> None:
    # HPE's sample has BIOS values staged (e.g. NumaGroupSizeOpt Clustered -> Flat) that wait for a reboot
    ilo = start_ilo(macs=(MAC,), power="On", sample_pending=True)
    desired = DesiredBmcState(bios={"NumaGroupSizeOpt": "Flat", "WorkloadProfile": "HighPerformanceCompute"},
                              boot_mac=MAC)
    result = run_node(Target(ilo.endpoint(), desired, CREDS), "plan", settings=pki.settings)
    assert result.ok
    assert result.plan.pending == {"NumaGroupSizeOpt": "Flat"}
    assert [c.item for c in result.plan.of("bios")] == ["WorkloadProfile"]


def test_inventory_with_gpus_from_oem_hpe(start_ilo: Callable[..., Ilo], pki: Pki) -> None:
    ilo = start_ilo(macs=(MAC, "94:40:c9:68:50:02"), gpus=8, serial="CZ2D1B0001")
    result = run_node(Target(ilo.endpoint(), XD685, CREDS), "inventory", settings=pki.settings)
    assert result.ok, result.error
    inv = result.inventory
    assert inv is not None
    assert (inv.manufacturer, inv.model, inv.serial) == ("HPE", "ProLiant XD685", "CZ2D1B0001")
    assert inv.macs == (MAC, "94:40:c9:68:50:02")
    assert len(inv.processors) == 2 and inv.cores == 128
    assert inv.memory_gib == 2304 and inv.dimms == 24
    assert len(inv.gpus) == 8 and {g.source for g in inv.gpus} == {"Oem.Hpe.PCIDevices"}
    assert all("B200" in (g.model or "") for g in inv.gpus), "the embedded VGA controller is not a GPU"
    assert inv.bmc_firmware == "iLO 5 v1.15" and inv.oem["PostState"] == "PowerOff"
