"""Faults: 500s, timeouts, connection resets, a wrong password, slow power transitions, one bad BMC in a fleet."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from bitten.core.redfish.credentials import Credentials
from bitten.core.redfish.endpoint import Endpoint, Timeouts
from bitten.core.retry import Backoff
from bitten.hardware import run_fleet, run_node
from bitten.hardware.fleet import Settings, Target
from bitten.hardware.plan import DesiredBmcState
from bitten.lab.doubles.bmc_emulator import SystemSpec
from bitten.lab.doubles.faults import Fault
from bitten.lab.doubles.ilo import SESSIONS, IloFake, IloSpec
from bitten.lab.serve import WsgiServer
from bitten.site.model import Boot

from .conftest import CREDS, PASSWORD, USER, Emulator, Ilo, Pki

DESIRED = DesiredBmcState(bios={"ProcSMT": "Disabled"}, boot=Boot(target="Pxe"), power="On")


def test_500s_are_retried_with_backoff(start_emulator: Callable[..., Emulator], pki: Pki) -> None:
    emu = start_emulator([SystemSpec("n1")])
    fault = emu.faults.add(Fault("status", status=500, path=r"/Systems/n1$", method="GET", times=2))
    patch = emu.faults.add(Fault("status", status=503, path=r"/BIOS/Settings$", method="PATCH", times=1))
    result = run_node(Target(emu.endpoint("n1"), DESIRED, CREDS), "apply", settings=pki.settings)
    assert result.ok, result.error
    assert fault.fired == 2 and patch.fired == 1
    assert result.retries == 3
    assert result.power == "On"


def test_persistent_500_fails_the_node_naming_the_bmc(start_emulator: Callable[..., Emulator], pki: Pki) -> None:
    emu = start_emulator([SystemSpec("n1")])
    emu.faults.add(Fault("status", status=500, path=r"/Systems/n1$", times=None))
    result = run_node(Target(emu.endpoint("n1"), DESIRED, CREDS), "apply", settings=pki.settings)
    assert not result.ok and result.error_kind == "RedfishServerError"
    assert f"BMC {emu.url} system n1 (host n1)" in (result.error or "")
    assert "HTTP 500 after 4 attempt(s)" in (result.error or "")


def test_timeouts_are_retried(start_emulator: Callable[..., Emulator], pki: Pki) -> None:
    emu = start_emulator([SystemSpec("n1")])
    # margins wide enough for a loaded CI machine: only the delayed answer may time out
    slow = emu.faults.add(Fault("delay", seconds=3.0, path=r"/BIOS$", times=1))
    settings = Settings(tls=pki.tls, timeouts=Timeouts(connect=2, read=1.5, power=5, poll=0.05),
                        retry=Backoff(attempts=4, initial=0.01))
    result = run_node(Target(emu.endpoint("n1"), DESIRED, CREDS), "apply", settings=settings)
    assert result.ok, result.error
    assert slow.fired == 1 and result.retries >= 1


def test_connection_resets_are_retried(start_ilo: Callable[..., Ilo], pki: Pki) -> None:
    ilo = start_ilo()
    reset = ilo.faults.add(Fault("reset", path=r"(?i)/systems/1/?$", times=2))
    result = run_node(Target(ilo.endpoint(), DESIRED, CREDS), "apply", settings=pki.settings)
    assert result.ok, result.error
    assert reset.fired == 2 and result.retries >= 2


def test_wrong_password_fails_fast_on_ilo(start_ilo: Callable[..., Ilo], pki: Pki) -> None:
    ilo = start_ilo()
    wrong = Credentials(USER, "not-the-password")
    result = run_node(Target(ilo.endpoint("gpu07"), DESIRED, wrong), "apply", settings=pki.settings)
    assert result.error_kind == "RedfishAuthError"
    assert f"BMC {ilo.url} system 1 (host gpu07)" in (result.error or "")
    assert f"authentication failed as user {USER!r} (HTTP 401)" in (result.error or "")
    # one login attempt: no retry, no fallback to basic auth (iLO counts every failure toward its lock-out)
    assert ilo.fake.calls[("POST", SESSIONS.lower().rstrip("/"))] == 1
    assert result.retries == 0


def test_wrong_password_fails_fast_on_the_emulator(start_emulator: Callable[..., Emulator], pki: Pki) -> None:
    emu = start_emulator([SystemSpec("n1")])
    result = run_node(Target(emu.endpoint("n1"), DESIRED, Credentials(USER, "nope")), "apply",
                      settings=pki.settings)
    assert result.error_kind == "RedfishAuthError" and result.retries == 0


def test_slow_power_transition_is_awaited(start_emulator: Callable[..., Emulator], pki: Pki) -> None:
    emu = start_emulator([SystemSpec("n1")], power_delay=1.0)
    start = time.monotonic()
    result = run_node(Target(emu.endpoint("n1"), DESIRED, CREDS), "apply", settings=pki.settings)
    assert result.ok, result.error
    assert result.power == "On"
    assert time.monotonic() - start >= 1.0


def test_power_transition_timeout(start_emulator: Callable[..., Emulator], pki: Pki) -> None:
    emu = start_emulator([SystemSpec("n1")], power_delay=5.0)
    settings = Settings(tls=pki.tls, timeouts=Timeouts(connect=1, read=2, power=0.5, poll=0.1),
                        retry=pki.settings.retry)
    result = run_node(Target(emu.endpoint("n1"), DESIRED, CREDS), "apply", settings=settings)
    assert result.error_kind == "PowerTimeout"
    assert "On requested, but the system is still Off after 0.5 s" in (result.error or "")


def test_ignored_graceful_shutdown_is_forced(start_emulator: Callable[..., Emulator], pki: Pki) -> None:
    emu = start_emulator([SystemSpec("n1", power_state="On")], graceful_ignored=True)
    settings = Settings(tls=pki.tls, timeouts=Timeouts(connect=1, read=2, power=0.5, poll=0.1),
                        retry=pki.settings.retry)
    result = run_node(Target(emu.endpoint("n1"), DesiredBmcState(power="Off"), CREDS), "apply", settings=settings)
    assert result.ok, result.error
    assert result.power == "Off"
    assert result.notes == ["GracefulShutdown timed out; the power was forced off"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_one_failing_bmc_never_stops_the_others(start_emulator: Callable[..., Emulator], pki: Pki) -> None:
    emu = start_emulator([SystemSpec(f"n{i}") for i in range(1, 6)])
    emu.faults.add(Fault("status", status=500, path=r"/Systems/n3$", times=None))
    targets = [Target(emu.endpoint(f"n{i}"), DESIRED, CREDS) for i in (1, 2, 3, 5)]
    targets.append(Target(emu.endpoint("n4"), DESIRED, Credentials(USER, "wrong")))
    targets.append(Target(Endpoint("ghost", f"https://127.0.0.1:{_closed_port()}", "1", "generic"), DESIRED, CREDS))
    result = run_fleet(targets, "apply", settings=pki.settings, concurrency=3)
    assert [r.host for r in result.results] == ["ghost", "n1", "n2", "n3", "n4", "n5"]
    assert sorted(r.host for r in result.changed) == ["n1", "n2", "n5"]
    failed = {r.host: r for r in result.failed}
    assert set(failed) == {"ghost", "n3", "n4"}
    assert failed["n3"].error_kind == "RedfishServerError"
    assert failed["n4"].error_kind == "RedfishAuthError"
    assert failed["ghost"].error_kind == "RedfishUnreachable" and "connection refused" in (failed["ghost"].error or "")
    assert result.as_dict()["failed"] == ["ghost", "n3", "n4"]


class ConcurrencyProbe:
    """WSGI wrapper that records the largest number of requests in flight at once (across servers)."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.lock = threading.Lock()

    def wrap(self, app: Any) -> Callable[..., Any]:
        def probe(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            with self.lock:
                self.now += 1
                self.peak = max(self.peak, self.now)
            try:
                time.sleep(0.01)
                return app(environ, start_response)
            finally:
                with self.lock:
                    self.now -= 1
        return probe


def test_concurrency_is_bounded(pki: Pki) -> None:
    probe = ConcurrencyProbe()
    servers = [WsgiServer(probe.wrap(IloFake(IloSpec(username=USER, password=PASSWORD))),
                          cert=(pki.cert, pki.key)).start() for _ in range(6)]
    try:
        targets = [Target(Endpoint(f"gpu0{i}", s.url, "1", "hpe_ilo"), DESIRED, CREDS) for i, s in enumerate(servers)]
        result = run_fleet(targets, "apply", settings=pki.settings, concurrency=2)
    finally:
        for server in servers:
            server.stop()
    assert result.ok and len(result.changed) == 6
    assert probe.peak == 2, "each node's requests are sequential; at most 2 nodes at a time"


def test_passwords_never_reach_the_logs(start_ilo: Callable[..., Ilo], start_emulator: Callable[..., Emulator],
                                        pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    ilo = start_ilo()
    emu = start_emulator([SystemSpec("n1")])
    emu.faults.add(Fault("status", status=500, path=r"/Systems/n1$", times=1))
    wrong = "wrong-password-5c2e"
    targets = [Target(ilo.endpoint(), DESIRED, CREDS), Target(emu.endpoint("n1"), DESIRED, CREDS),
               Target(ilo.endpoint("other"), DESIRED, Credentials(USER, wrong))]
    result = run_fleet(targets, "apply", settings=pki.settings)
    assert len(result.failed) == 1
    text = caplog.text + repr(result.as_dict()) + repr(targets)
    assert PASSWORD not in text and wrong not in text
    assert "password='***'" in repr(CREDS)
