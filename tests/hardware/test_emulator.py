"""Apply desired state through the sushy-tools emulator (generic Redfish) over TLS with basic auth."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bitten.core.redfish.connection import Connection
from bitten.hardware import PlanError, run_node
from bitten.hardware.fleet import Target
from bitten.hardware.node import BmcNode
from bitten.hardware.plan import DesiredBmcState, Observed, Options
from bitten.lab.doubles.bmc_emulator import SystemSpec
from bitten.site.model import Boot

from .conftest import CREDS, Emulator, Pki

MAC = "02:1a:b0:00:00:21"
DESIRED = DesiredBmcState(bios={"ProcSMT": "Disabled", "WorkloadProfile": "HighPerformanceCompute"},
                  boot=Boot(target="Pxe"), power="On", boot_mac=MAC)


def look(emu: Emulator, pki: Pki, name: str, desired: DesiredBmcState = DESIRED) -> Observed:
    with Connection(emu.endpoint(name), CREDS, pki.tls) as conn:
        return BmcNode(conn).observe(desired, Options(check_boot_mac=False))


def test_apply_then_second_apply_changes_nothing(start_emulator: Callable[..., Emulator], pki: Pki) -> None:
    emu = start_emulator([SystemSpec("lab-gpu01", macs=(MAC,))])
    target = Target(emu.endpoint("lab-gpu01"), DESIRED, CREDS)

    first = run_node(target, "apply", settings=pki.settings)
    assert first.ok, first.error
    assert first.changed
    assert {(c.area, c.item) for c in first.plan.changes} == {
        ("bios", "ProcSMT"), ("bios", "WorkloadProfile"), ("power", "state"), ("boot", "override")}
    assert first.power == "On"
    after = look(emu, pki, "lab-gpu01")
    # the node was powered on by the apply, so the staged BIOS settings were applied while it booted
    assert after.bios is not None and after.bios["ProcSMT"] == "Disabled" and not after.bios_pending
    assert after.boot_target == "Pxe"

    second = run_node(target, "apply", settings=pki.settings)
    assert second.ok and not second.changed
    assert second.plan.changes == ()


def test_running_node_gets_pending_bios_and_reboot_applies_it(start_emulator: Callable[..., Emulator],
                                                             pki: Pki) -> None:
    emu = start_emulator([SystemSpec("n1", macs=(MAC,), power_state="On")])
    target = Target(emu.endpoint("n1"), DESIRED, CREDS)

    result = run_node(target, "apply", settings=pki.settings)
    assert result.ok and result.changed
    assert result.pending == {"ProcSMT": "Disabled", "WorkloadProfile": "HighPerformanceCompute"}
    assert not result.plan.of("power") and not result.plan.of("boot")
    state = look(emu, pki, "n1")
    assert state.bios is not None and state.bios["ProcSMT"] == "Enabled"
    assert state.bios_pending["ProcSMT"] == "Disabled"

    again = run_node(target, "apply", settings=pki.settings)
    assert again.ok and not again.changed, "values already pending are no change"
    assert again.plan.pending == {"ProcSMT": "Disabled", "WorkloadProfile": "HighPerformanceCompute"}

    rebooted = run_node(target, "apply", Options(reboot=True), settings=pki.settings)
    assert rebooted.ok and rebooted.changed
    assert rebooted.plan.reset_type == "ForceRestart"
    assert rebooted.pending == {}
    final = look(emu, pki, "n1")
    assert final.bios is not None and final.bios["ProcSMT"] == "Disabled" and final.power == "On"


def test_unknown_bios_attribute_writes_nothing(start_emulator: Callable[..., Emulator], pki: Pki) -> None:
    emu = start_emulator([SystemSpec("n1", macs=(MAC,))])
    desired = DesiredBmcState(bios={"ProcSMT": "Disabled", "NoSuchKnob": "On"}, boot_mac=MAC)
    result = run_node(Target(emu.endpoint("n1"), desired, CREDS), "apply", settings=pki.settings)
    assert not result.ok and result.error_kind == "PlanError"
    assert "NoSuchKnob" in (result.error or "") and "host n1" in (result.error or "")
    state = look(emu, pki, "n1", desired)
    assert state.power == "Off" and not state.bios_pending


def test_wrong_node_behind_the_bmc_writes_nothing(start_emulator: Callable[..., Emulator], pki: Pki) -> None:
    emu = start_emulator([SystemSpec("n1", macs=("02:00:00:00:00:99",))])
    result = run_node(Target(emu.endpoint("n1"), DESIRED, CREDS), "apply", settings=pki.settings)
    assert not result.ok and "may point at another node" in (result.error or "")
    assert look(emu, pki, "n1").power == "Off"


def test_power_off(start_emulator: Callable[..., Emulator], pki: Pki) -> None:
    emu = start_emulator([SystemSpec("n1", power_state="On")])
    result = run_node(Target(emu.endpoint("n1"), DesiredBmcState(power="Off"), CREDS), "apply", settings=pki.settings)
    assert result.ok and result.power == "Off"
    assert result.plan.reset_type == "GracefulShutdown"


@pytest.fixture
def iso_server(tmp_path: Path) -> Iterator[str]:
    """A plain HTTP server with a small ISO, as a provisioning server would offer (the emulator downloads it)."""
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "installer.iso").write_bytes(b"\0" * 4096)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, directory=str(tmp_path / "www"), **kw)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/installer.iso"
    server.shutdown()
    server.server_close()


def test_boot_once_from_virtual_media(start_emulator: Callable[..., Emulator], pki: Pki, iso_server: str) -> None:
    emu = start_emulator([SystemSpec("n1")])
    desired = DesiredBmcState(boot=Boot(target="Cd", image_url=iso_server))
    result = run_node(Target(emu.endpoint("n1"), desired, CREDS), "apply", settings=pki.settings)
    assert result.ok, result.error
    assert [c.area for c in result.plan.changes] == ["power", "media", "boot"]
    state = look(emu, pki, "n1", desired)
    assert state.media is not None and state.media.inserted and state.media.image == iso_server
    assert state.boot_target == "Cd"
    # the emulator reads BootSourceOverrideEnabled back as Continuous whatever was set; hardware reports Once


def test_tls_verification_is_on_by_default(start_emulator: Callable[..., Emulator], pki: Pki,
                                           tmp_path: Path) -> None:
    from bitten.core.pki import CertificateAuthority
    from bitten.core.redfish.endpoint import Tls
    from bitten.hardware.fleet import Settings

    emu = start_emulator([SystemSpec("n1")])
    other_ca = CertificateAuthority(tmp_path / "other").ensure()
    settings = Settings(tls=Tls(ca_file=str(other_ca.cert_path)), timeouts=pki.settings.timeouts,
                        retry=pki.settings.retry)
    result = run_node(Target(emu.endpoint("n1"), DESIRED, CREDS), "plan", settings=settings)
    assert not result.ok and result.error_kind == "RedfishUnreachable"
    assert "TLS verification failed" in (result.error or "")
    assert result.retries == 0, "a certificate problem is not retried"
    with pytest.raises(PlanError):
        raise PlanError("x", "y")


def test_one_bmc_per_port(tmp_path: Path, pki: Pki, htpasswd: Path) -> None:
    """port_per_system: each system behind its own port, its Systems collection listing only itself."""
    from bitten.core.redfish.endpoint import Endpoint
    from bitten.hardware.fleet import run_fleet
    from bitten.lab.doubles.bmc_emulator import EmulatorServer

    specs = [SystemSpec(f"n{i}") for i in range(3)]
    with EmulatorServer(specs, tmp_path / "state", cert=(pki.cert, pki.key), auth_file=htpasswd,
                        port_per_system=True) as server:
        assert len(set(server.ports.values())) == 3
        with Connection(Endpoint("n1", server.url_of("n1"), "n1", "generic"), CREDS, pki.tls) as conn:
            members = conn.get_json("/redfish/v1/Systems")["Members"]
            assert members == [{"@odata.id": f"/redfish/v1/Systems/{specs[1].uuid}"}]
        stray = run_node(Target(Endpoint("n0", server.url_of("n1"), "n0", "generic"), DESIRED, CREDS), "plan",
                         settings=pki.settings)
        assert stray.error_kind == "RedfishNotFound", "another node's system is not on this BMC"
        result = run_fleet([Target(Endpoint(s.name, server.url_of(s.name), s.name, "generic"),
                                   DesiredBmcState(power="On"), CREDS) for s in specs], "apply", settings=pki.settings)
        assert result.ok and len(result.changed) == 3
