"""The Redfish client (bitten.core.redfish) against the emulators: origin pinning, the size cap, the request
deadline, sessions (deleted on close, re-created on expiry), what is retried and what never is."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from bitten.core.redfish.connection import Connection
from bitten.core.redfish.endpoint import Endpoint, Limits, Timeouts
from bitten.core.redfish.errors import (
    RedfishBadResponse,
    RedfishForeignOrigin,
    RedfishServerError,
    RedfishUnreachable,
)
from bitten.core.redfish.thermal import cooling_unit
from bitten.core.retry import Backoff
from bitten.hardware import run_node
from bitten.hardware.fleet import Settings, Target
from bitten.hardware.plan import DesiredBmcState
from bitten.lab.doubles.bmc_emulator import SystemSpec
from bitten.lab.doubles.faults import Fault, Recorder
from bitten.lab.doubles.ilo import SESSIONS, SYSTEM, samples
from bitten.lab.doubles.mockup import serve_mockup
from bitten.lab.httpserve import base_url, in_thread
from bitten.lab.serve import WsgiServer
from bitten.site.model import Boot

from .conftest import CREDS, FAST_RETRY, FAST_TIMEOUTS, MOCKUPS, Emulator, Ilo, Pki

DESIRED = DesiredBmcState(bios={"ProcSMT": "Disabled"}, boot=Boot(target="Pxe"), power="On")
LOGIN = ("POST", SESSIONS.lower().rstrip("/"))


@pytest.fixture
def elsewhere(pki: Pki) -> Iterator[tuple[str, Recorder]]:
    """Another origin (same host, another port) that records whatever reaches it."""
    recorder = Recorder()
    with WsgiServer(recorder, cert=(pki.cert, pki.key)) as server:
        yield server.url, recorder


def test_a_link_to_another_origin_is_not_followed(start_ilo: Callable[..., Ilo], pki: Pki,
                                                  elsewhere: tuple[str, Recorder]) -> None:
    url, recorder = elsewhere
    ilo = start_ilo()
    bios = samples()["system"]["Bios"]["@odata.id"]
    ilo.faults.add(Fault("rewrite", path=r"(?i)/systems/1/?$", method="GET", times=None,
                         replace=(f'"{bios}"', f'"{url}{bios}"')))
    result = run_node(Target(ilo.endpoint(), DESIRED, CREDS), "plan", settings=pki.settings)
    assert result.error_kind == "RedfishForeignOrigin"
    assert f"{url}{bios} is on another origin" in (result.error or "")
    assert recorder.seen == [], "nothing, least of all the session token, went to the other origin"
    assert ilo.fake.sessions == {}, "the session was still deleted at its own origin"


def test_a_redirect_to_another_origin_is_not_followed(start_ilo: Callable[..., Ilo], pki: Pki,
                                                      elsewhere: tuple[str, Recorder]) -> None:
    url, recorder = elsewhere
    ilo = start_ilo()
    ilo.faults.add(Fault("redirect", path=r"(?i)/systems/1/?$", method="GET", times=1,
                         location=f"{url}/redfish/v1/Systems/1/"))
    result = run_node(Target(ilo.endpoint(), DESIRED, CREDS), "plan", settings=pki.settings)
    assert result.error_kind == "RedfishForeignOrigin" and recorder.seen == []


def test_a_redirect_within_the_origin_is_followed(start_ilo: Callable[..., Ilo], pki: Pki) -> None:
    ilo = start_ilo()
    moved = ilo.faults.add(Fault("redirect", path=r"^/redfish/v1/Systems/1$", method="GET", times=1,
                                 location="/redfish/v1/Systems/1/"))
    result = run_node(Target(ilo.endpoint(), DESIRED, CREDS), "plan", settings=pki.settings)
    assert result.ok, result.error
    assert moved.fired == 1


def test_a_session_location_on_another_origin_gets_no_delete(start_ilo: Callable[..., Ilo], pki: Pki,
                                                             elsewhere: tuple[str, Recorder],
                                                             caplog: pytest.LogCaptureFixture) -> None:
    url, recorder = elsewhere
    ilo = start_ilo(session_origin=url)
    with Connection(ilo.endpoint(), CREDS, pki.tls, FAST_TIMEOUTS, FAST_RETRY) as conn:
        assert conn.get_json(SYSTEM)["PowerState"] == "Off"
    assert recorder.seen == [], "the token was not sent to the origin the Location named"
    assert len(ilo.fake.sessions) == 1, "the session is left to expire on the BMC"
    assert "the session was not deleted" in caplog.text and "another origin" in caplog.text


def test_sessions_are_deleted_on_close_and_recreated_on_expiry(start_ilo: Callable[..., Ilo], pki: Pki) -> None:
    ilo = start_ilo()
    with Connection(ilo.endpoint(), CREDS, pki.tls, FAST_TIMEOUTS, FAST_RETRY) as conn:
        assert conn.get_json(SYSTEM)["PowerState"] == "Off"
        assert ilo.fake.calls[LOGIN] == 1 and len(ilo.fake.sessions) == 1
        ilo.fake.expire_sessions()
        assert conn.get_json(SYSTEM)["PowerState"] == "Off", "a new session, and the request again"
        assert ilo.fake.calls[LOGIN] == 2 and len(ilo.fake.sessions) == 1
        assert conn.connector.counters.retries == 0, "an expired session is not a retry"
    assert ilo.fake.sessions == {}, "the second session was deleted on close"
    assert sum(n for (method, _path), n in ilo.fake.calls.items() if method == "DELETE") == 1


def test_the_generic_flavour_never_tries_a_session_the_service_does_not_offer(
        start_emulator: Callable[..., Emulator], pki: Pki) -> None:
    emu = start_emulator([SystemSpec("n1")], sessions=False)
    probe = emu.faults.add(Fault("status", path=r"SessionService", times=None))
    result = run_node(Target(emu.endpoint("n1"), DESIRED, CREDS), "apply", settings=pki.settings)
    assert result.ok, result.error
    assert probe.fired == 0, "no failed login before basic auth"


def test_the_generic_flavour_uses_the_session_service_the_emulator_offers(
        start_emulator: Callable[..., Emulator], pki: Pki) -> None:
    emu = start_emulator([SystemSpec("n1")])
    service = emu.server.session_services[0]
    with Connection(emu.endpoint("n1"), CREDS, pki.tls, FAST_TIMEOUTS, FAST_RETRY) as conn:
        assert conn.session_uri is not None and conn.session_uri.startswith("/redfish/v1/SessionService/Sessions/")
        assert conn.get_json("/redfish/v1/Systems/n1")["PowerState"] == "Off"
        assert "Authorization" not in conn.connector._session.headers and conn.connector._session.auth is None
        emu.server.expire_sessions()
        assert conn.get_json("/redfish/v1/Systems/n1")["PowerState"] == "Off", "a new session after expiry"
        assert service.logins == 2
    assert service.sessions == {}, "deleted on close"
    wrong = run_node(Target(emu.endpoint("n1"), DESIRED, type(CREDS)(CREDS.username, "wrong")), "plan",
                     settings=pki.settings)
    assert wrong.error_kind == "RedfishAuthError" and service.logins == 2


def test_an_answer_larger_than_the_cap_is_not_read(start_ilo: Callable[..., Ilo], pki: Pki) -> None:
    ilo = start_ilo()
    declared = ilo.faults.add(Fault("oversize", path=r"(?i)/systems/1/?$", size=4 << 20, times=1))
    streamed = ilo.faults.add(Fault("oversize", path=r"(?i)/systems/1/?$", size=4 << 20, times=1,
                                    declare_length=False))
    limits = Limits(max_body=256 << 10)
    with Connection(ilo.endpoint(), CREDS, pki.tls, FAST_TIMEOUTS, FAST_RETRY, limits) as conn:
        with pytest.raises(RedfishBadResponse, match=r"4194\d+ bytes, more than the 262144-byte cap; not read"):
            conn.get_json(SYSTEM)
        with pytest.raises(RedfishBadResponse, match="passed the 262144-byte cap; the rest was not read"):
            conn.get_json(SYSTEM)
        assert (declared.fired, streamed.fired) == (1, 1), "a cap is not retried"
        assert conn.get_json(SYSTEM)["PowerState"] == "Off", "the connection works on afterwards"


def test_an_answer_that_trickles_in_fails_at_the_deadline(start_ilo: Callable[..., Ilo], pki: Pki) -> None:
    ilo = start_ilo()
    # 64 bytes every 0.25 s: the system document (~5 KB) would take ~20 s; every single read is fast
    slow = ilo.faults.add(Fault("trickle", path=r"(?i)/systems/1/?$", size=64, seconds=0.25, times=None))
    timeouts = Timeouts(connect=2, read=2, request=1.0, power=5, poll=0.05)
    with Connection(ilo.endpoint(), CREDS, pki.tls, timeouts, Backoff(attempts=2, initial=0.01)) as conn:
        start = time.monotonic()
        with pytest.raises(RedfishUnreachable, match="timed out after 2 attempt"):
            conn.get_json(SYSTEM)
        elapsed = time.monotonic() - start
    assert slow.fired == 2
    assert elapsed < 10, "two attempts of 1 s each, not the ~40 s the answers would take"


def test_a_reset_is_never_repeated_blindly(start_ilo: Callable[..., Ilo], pki: Pki) -> None:
    ilo = start_ilo()
    failing = ilo.faults.add(Fault("status", status=500, path=r"(?i)ComputerSystem\.Reset", method="POST", times=1))
    result = run_node(Target(ilo.endpoint(), DesiredBmcState(power="On"), CREDS), "apply", settings=pki.settings)
    assert result.error_kind == "RedfishServerError"
    assert "HTTP 500 after 1 attempt(s)" in (result.error or "")
    assert failing.fired == 1 and result.retries == 0


def test_a_request_that_never_left_is_repeated_even_when_it_is_a_post(pki: Pki) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conn = Connection(Endpoint("ghost", f"https://127.0.0.1:{port}", flavour="generic"), CREDS, pki.tls,
                      FAST_TIMEOUTS, Backoff(attempts=3, initial=0.01))
    with pytest.raises(RedfishUnreachable, match="connection refused after 3 attempt"):
        conn.post("/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", {"ResetType": "On"})
    assert conn.connector.counters.retries == 2


def test_500s_on_reads_are_retried_and_reported_with_the_count(start_ilo: Callable[..., Ilo], pki: Pki) -> None:
    ilo = start_ilo()
    ilo.faults.add(Fault("status", status=503, path=r"(?i)/systems/1/?$", method="GET", times=None))
    with Connection(ilo.endpoint(), CREDS, pki.tls, FAST_TIMEOUTS, FAST_RETRY) as conn, \
            pytest.raises(RedfishServerError, match="HTTP 503 after 4 attempt"):
        conn.get_json(SYSTEM)


def test_one_connection_and_one_handshake_per_node(start_ilo: Callable[..., Ilo], pki: Pki) -> None:
    """Persistent connections: a whole apply (login, reads, writes, power, verification, logout) on one."""
    ilo = start_ilo(macs=("94:40:c9:68:50:01",))
    desired = DesiredBmcState(bios={"ProcSMT": "Disabled"}, boot=Boot(target="Pxe"), power="On",
                              boot_mac="94:40:c9:68:50:01")
    result = run_node(Target(ilo.endpoint(), desired, CREDS), "apply", settings=pki.settings)
    assert result.ok and result.changed, result.error
    assert ilo.faults.requests == result.requests >= 10
    assert len(ilo.faults.peers) == 1


def test_a_cdu_through_the_same_client(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    """ThermalEquipment as sushy resources over the one connection layer (DMTF's public-cooling-unit mockup)."""
    caplog.set_level(logging.WARNING)
    root = MOCKUPS / "public-cooling-unit"
    if not root.is_dir():
        pytest.skip(f"{root} is not available")
    server = serve_mockup(root, certfile=str(pki.cert), keyfile=str(pki.key))
    in_thread(server)
    try:
        endpoint = Endpoint("cdu1", base_url(server, "https"), kind="CDU", flavour="generic")
        settings = Settings(tls=pki.tls, timeouts=FAST_TIMEOUTS, retry=FAST_RETRY)
        with Connection(endpoint, None, settings.tls, settings.timeouts, settings.retry) as conn:
            assert conn.expand_supported()
            unit = cooling_unit(conn, "1")
            with conn.translated("read the CDU"):
                primary = unit.primary_connectors()
                pumps = unit.pumps()
                leaks = unit.leak_detection()
                assert leaks is not None and leaks.detectors() == [], "this CDU lists its detectors inline"
    finally:
        server.shutdown()
        server.server_close()
    assert (unit.equipment_type, unit.firmware_version) == ("CDU", "3.2.0")
    assert (unit.coolant.density_kg_m3, unit.coolant.specific_heat_kj_kg_k) == (1030, 3.974)
    assert "Environmental.1.2.PumpFailed" in {c["MessageId"] for c in unit.status.conditions}
    assert [(c.flow_lpm, c.supply_c, c.return_c, c.heat_removed_kw) for c in primary] == [(42, 30, 40, 25.48)]
    assert (pumps[0].identity, pumps[0].speed_percent) == ("1", 38.5)
    assert [d["DetectorState"] for g in leaks.groups for d in g["Detectors"]] == ["OK", "OK"]
    assert "CDU " in endpoint.where and "system" not in endpoint.where


def test_foreign_origin_errors_are_permanent() -> None:
    assert RedfishForeignOrigin("x", "y").permanent


def test_writes_go_to_the_systems_own_address_when_its_alias_redirects(start_ilo: Callable[..., Ilo],
                                                                        pki: Pki) -> None:
    """sushy-tools' libvirt driver (the lab's bare nodes) answers /Systems/<name> with a redirect to
    /Systems/<uuid>: bitten reads through it and writes where the document says it lives (@odata.id), never
    repeating a write at the address a redirect names."""
    ilo = start_ilo()
    alias = ilo.faults.add(Fault("redirect", path=r"^/redfish/v1/Systems/node-a/?$", times=None,
                                 location=SYSTEM))
    endpoint = replace(ilo.endpoint(), system_id="node-a")
    result = run_node(Target(endpoint, DESIRED, CREDS), "apply", settings=pki.settings)
    assert result.ok, result.error
    assert alias.fired >= 1, "the alias was read through its redirect"
    # the one-time boot and the power-on reached the system itself (the boot consumed the Once)
    assert (ilo.fake.power, ilo.fake.boots, ilo.fake.bios["ProcSMT"]) == ("On", 1, "Disabled")
