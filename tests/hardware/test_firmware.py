"""Firmware baseline against the emulator's UpdateService: drift, SimpleUpdate with an image from the site's own
HTTP server, the task, and the new version visible (at once for the BMC, after the next reboot for the BIOS)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bitten.core.redfish.connection import Connection
from bitten.hardware.firmware import Drift, drift, image_url, read_components, update
from bitten.hardware.node import BmcNode
from bitten.lab.doubles.bmc_emulator import SystemSpec
from bitten.site.model import Firmware

from .conftest import CREDS, FAST_RETRY, FAST_TIMEOUTS, Emulator, Pki

BASELINE = {"bmc": Firmware(name="BMC", version="2.10", image="bmc-2.10.fwpkg"),
            "bios": Firmware(name="BIOS", version="1.60", image="bios/U58-1.60.fwpkg")}


@pytest.fixture
def repository(tmp_path: Path) -> Iterator[str]:
    """The site's own HTTP server with firmware images (in the shape of HPE's fwpkg payload.json)."""
    www = tmp_path / "firmware"
    (www / "bios").mkdir(parents=True)
    for path, name, version in (("bmc-2.10.fwpkg", "BMC", "2.10"), ("bios/U58-1.60.fwpkg", "BIOS", "1.60")):
        (www / path).write_text(json.dumps({"Devices": {"Device": [{"DeviceName": name, "Version": version}]}}))

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, directory=str(www), **kw)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


def test_drift_update_and_the_version_after_the_reboot(start_emulator: Callable[..., Emulator], pki: Pki,
                                                        repository: str) -> None:
    emu = start_emulator([SystemSpec("n1", power_state="On")])
    emu.server.update_services[0].flash_seconds = 0.3
    endpoint = emu.endpoint("n1")
    with Connection(endpoint, CREDS, pki.tls, FAST_TIMEOUTS, FAST_RETRY) as conn:
        components = read_components(conn, endpoint.system_path)
        assert {(c.name, c.version) for c in components} == {("BMC", "1.00"), ("BIOS", "1.00")}
        found = drift(BASELINE, components, repository)
        assert [str(d) for d in found] == ["firmware bios (BIOS): 1.00 -> 1.60", "firmware bmc (BMC): 1.00 -> 2.10"]
        assert found[0].image == f"{repository}bios/U58-1.60.fwpkg"

        result = update(conn, found, endpoint.system_path, timeout=30, poll=0.05)
        states = {o.drift.label: o.state for o in result.outcomes}
        assert states == {"bmc": "active", "bios": "staged"}
        assert "AwaitToActivate" in next(o.message for o in result.outcomes if o.drift.label == "bios")
        assert emu.server.update_services[0].requests == [
            (f"{repository}bios/U58-1.60.fwpkg", ("/redfish/v1/UpdateService/FirmwareInventory/BIOS",)),
            (f"{repository}bmc-2.10.fwpkg", ("/redfish/v1/UpdateService/FirmwareInventory/BMC",))]
        after = {c.name: c.version for c in read_components(conn, endpoint.system_path)}
        assert after == {"BMC": "2.10", "BIOS": "1.00"}, "the BIOS image waits for the next reboot"

        node = BmcNode(conn)
        node.reset("ForceRestart")
        node.wait_power("On", "ForceRestart")
        rebooted = {c.name: c.version for c in read_components(conn, endpoint.system_path)}
        assert rebooted == {"BMC": "2.10", "BIOS": "1.60"}
        assert node.system(refresh=True).get("BiosVersion") == "1.60"
        assert drift(BASELINE, read_components(conn, endpoint.system_path), repository) == []


def test_an_image_that_cannot_be_fetched_fails_the_update_and_changes_nothing(
        start_emulator: Callable[..., Emulator], pki: Pki, repository: str) -> None:
    emu = start_emulator([SystemSpec("n1")])
    endpoint = emu.endpoint("n1")
    missing = {"bios": Firmware(name="BIOS", version="9.99", image="nowhere.fwpkg")}
    with Connection(endpoint, CREDS, pki.tls, FAST_TIMEOUTS, FAST_RETRY) as conn:
        found = drift(missing, read_components(conn, endpoint.system_path), repository)
        result = update(conn, found, endpoint.system_path, timeout=30, poll=0.05)
        assert [o.state for o in result.outcomes] == ["failed"]
        assert "TransferFailed" in result.outcomes[0].message
        assert {c.name: c.version for c in read_components(conn, endpoint.system_path)}["BIOS"] == "1.00"


def test_a_component_the_bmc_does_not_report_is_not_updated(start_emulator: Callable[..., Emulator], pki: Pki,
                                                            repository: str) -> None:
    emu = start_emulator([SystemSpec("n1")])
    endpoint = emu.endpoint("n1")
    gpu = {"gpu": Firmware(name="GPU", version="96.00", image="gpu.fwpkg")}
    with Connection(endpoint, CREDS, pki.tls, FAST_TIMEOUTS, FAST_RETRY) as conn:
        found = drift(gpu, read_components(conn, endpoint.system_path), repository)
        assert found == [Drift("gpu", "GPU", "96.00", None, f"{repository}gpu.fwpkg")]
        assert "not reported by the BMC" in str(found[0])
        result = update(conn, found, endpoint.system_path)
        assert result.failed and emu.server.update_services[0].requests == []


def test_image_paths_resolve_under_the_repository() -> None:
    fw = Firmware(name="BIOS", version="1", image="/bios/a.fwpkg")
    assert image_url("http://10.0.0.5/firmware", fw) == "http://10.0.0.5/firmware/bios/a.fwpkg"
    with pytest.raises(ValueError, match="firmware_repository is not set"):
        image_url(None, fw)
