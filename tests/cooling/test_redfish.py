"""The DMTF public-cooling-unit mockup served read-only, TLS with a private CA, and devices that answer garbage."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from bitten.cooling.alarms import evaluate, findings
from bitten.cooling.devices import cdu_view
from bitten.cooling.modbus import DeviceError, WriteRefused
from bitten.cooling.redfish import RedfishCdu
from bitten.core.pki import server_tls
from bitten.lab.doubles.mockup import serve_mockup
from bitten.lab.httpserve import base_url, in_thread, serve
from bitten.site.model import LoopLimits


def test_mockup_reading(mockup_url: str) -> None:
    r = RedfishCdu("fixture", mockup_url, "1", auth="none").read()
    assert (r.health, r.health_rollup) == ("Warning", "Critical")
    assert (r.density_kg_m3, r.specific_heat_kj_kg_k, r.coolant_additive_percent) == (1030, 3.974, 20)
    primary, secondary = r.connector("primary"), r.connector("secondary")
    assert primary is not None and secondary is not None
    assert (primary.flow_lpm, primary.supply_c, primary.return_c, primary.heat_reported_kw) == (42, 30, 40, 25.48)
    assert (secondary.supply_c, secondary.return_c, secondary.heat_reported_kw) == (30, 48, 25.31)
    assert secondary.supply_setpoint is not None
    assert (secondary.supply_setpoint.allowable_min, secondary.supply_setpoint.allowable_max) == (10, 35)
    assert [(p.id, p.failed) for p in r.pumps] == [("1", False), ("2", True)]
    assert [d.state for d in r.leak_detectors] == ["OK", "OK"]
    assert [f.health for f in r.filters] == ["OK"]
    assert r.garbage == []


def test_mockup_heat_divergence_is_surfaced(mockup_url: str) -> None:
    view = cdu_view(RedfishCdu("fixture", mockup_url, "1", auth="none").read(), None)
    primary = next(c for c in view.connectors if c.side == "primary")
    secondary = next(c for c in view.connectors if c.side == "secondary")
    # the facility side is water unless configured: ~0.0690 kW per L/min K at 35 degC -> 29.0 kW vs 25.48 kW
    assert primary.heat_computed_kw == pytest.approx(29.0, abs=0.2)
    assert primary.divergence is not None and primary.divergence > 0.1
    # the rack side uses the CDU's own coolant: rho 1030, cp 3.974, 42 L/min, 18 K -> 51.6 kW vs 25.31 reported
    assert secondary.props is not None and secondary.props.source == "cdu"
    assert secondary.heat_computed_kw == pytest.approx(1030 * 3.974 * 42 / 60000 * 18, rel=1e-6)


def test_mockup_alarms(mockup_url: str) -> None:
    reading = RedfishCdu("fixture", mockup_url, "1", auth="none").read()
    found = findings(evaluate(reading, LoopLimits(min_flow_lpm=50, max_supply_temperature_c=28)))
    assert set(found) == {"pump_failed", "low_flow", "high_supply_temperature"}
    assert "pump(s) 2 failed" in found["pump_failed"]
    assert "pump_failed" not in findings(evaluate(reading, LoopLimits(tolerated_pump_failures=1)))


def test_mockup_is_read_only_and_writes_are_guarded(mockup_url: str) -> None:
    cdu = RedfishCdu("fixture", mockup_url, "1", auth="none")
    with pytest.raises(WriteRefused, match="disabled"):
        cdu.set_supply_temperature(31, writes_enabled=False)
    with pytest.raises(WriteRefused, match=r"outside the device's allowable range \[10.0, 35.0\]"):
        cdu.set_supply_temperature(36, writes_enabled=True)
    with pytest.raises(DeviceError, match="HTTP 405"):
        cdu.set_supply_temperature(31, writes_enabled=True)  # in range, but the mockup is served read-only
    assert cdu.event_stream_uri() is None  # the mockup's EventService offers no SSE: polling only


def test_simulator_setpoint_write_within_range(cdu_sim) -> None:  # type: ignore[no-untyped-def]
    sim, server = cdu_sim
    cdu = RedfishCdu("sim", base_url(server), "1", username="agent", password="s3cret")
    assert cdu.set_supply_temperature(33.5, writes_enabled=True) == 33.5
    assert sim.plants[0].supply_setpoint_c == 33.5
    with pytest.raises(WriteRefused):
        cdu.set_supply_temperature(50, writes_enabled=True)


def test_session_auth(cdu_sim) -> None:  # type: ignore[no-untyped-def]
    sim, server = cdu_sim
    cdu = RedfishCdu("sim", base_url(server), "1", username="agent", password="s3cret", auth="session")
    assert cdu.read().health == "OK"
    headers, basic = cdu.connection.auth_for_stream()
    assert basic is None and headers["X-Auth-Token"] in sim.tokens  # a session token, not basic auth
    assert len(sim.sessions) == 1
    sim.forget_sessions()  # the service forgot the session: the client logs in again
    assert cdu.read().health == "OK" and len(sim.sessions) == 1
    cdu.close()
    assert sim.sessions == {} and sim.sessions_deleted == 1  # logged out: no session left behind on the CDU
    with pytest.raises(DeviceError, match="401"):
        RedfishCdu("sim", base_url(server), "1", username="agent", password="nope", auth="session").read()


def test_wrong_password_is_a_device_error(cdu_sim) -> None:  # type: ignore[no-untyped-def]
    _sim, server = cdu_sim
    with pytest.raises(DeviceError, match="HTTP 401"):
        RedfishCdu("sim", base_url(server), "1", username="agent", password="wrong").read()


def test_tls_verified_against_the_configured_ca(tmp_path: Path, mockup_dir: Path) -> None:
    tls = server_tls(tmp_path / "tls", ["127.0.0.1"])
    other_ca = server_tls(tmp_path / "other", ["127.0.0.1"]).ca
    ca = tls.ca
    server = serve_mockup(mockup_dir, certfile=str(tls.cert), keyfile=str(tls.key))
    in_thread(server)
    try:
        url = base_url(server, "https")
        assert RedfishCdu("tls", url, "1", auth="none", ca_file=str(ca)).read().health == "Warning"
        with pytest.raises(DeviceError, match=r"TLS verification failed .* the CDU's certificate"):
            RedfishCdu("tls", url, "1", auth="none", ca_file=str(other_ca)).read()
    finally:
        server.shutdown()


class Garbage(BaseHTTPRequestHandler):
    """A CDU gone wrong: HTML errors, truncated JSON, numbers as strings, a non-CoolingUnit."""

    mode = "html500"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        mode = type(self).mode
        if self.path.rstrip("/") == "/redfish/v1":  # the service root is fine; the CDU is not
            body = json.dumps({"@odata.id": "/redfish/v1/", "Id": "RootService", "Name": "garbage"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if mode == "html500":
            body, code, ctype = b"<html>Internal Server Error</html>", 500, "text/html"
        elif mode == "truncated":
            body, code, ctype = b'{"@odata.type": "#CoolingUnit.v1_5_0.CoolingUnit", "Id"', 200, "application/json"
        elif mode == "list":
            body, code, ctype = b"[1, 2, 3]", 200, "application/json"
        elif mode == "wrongtype":
            body, code, ctype = json.dumps({"@odata.type": "#Chassis.v1_0_0.Chassis"}).encode(), 200, "application/json"
        else:  # strings and NaN where numbers belong: the reading survives, the fields count as garbage
            doc = {"@odata.type": "#CoolingUnit.v1_5_0.CoolingUnit", "Status": {"Health": "OK"},
                   "Coolant": {"DensityKgPerCubicMeter": "heavy", "SpecificHeatkJoulesPerKgK": 3.9},
                   "SecondaryCoolantConnectors": {"@odata.id": "/redfish/v1/x/conns"}}
            if self.path.endswith("/conns"):
                doc = {"Members": [{"@odata.id": "/redfish/v1/x/conns/1"}]}
            elif self.path.endswith("/conns/1"):
                doc = {"Id": "1", "FlowLitersPerMinute": {"Reading": "lots"}, "SupplyTemperatureCelsius":
                       {"Reading": 30}, "ReturnTemperatureCelsius": 41.5, "HeatRemovedkW": {"Reading": None}}
            body, code, ctype = json.dumps(doc).encode(), 200, "application/json"
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def garbage_url() -> Iterator[str]:
    server = serve(Garbage, "127.0.0.1", 0)
    in_thread(server)
    yield base_url(server)
    server.shutdown()


@pytest.mark.parametrize(("mode", "message"), [("html500", "HTTP 500"), ("truncated", "not JSON"),
                                               ("list", "not a JSON object"), ("wrongtype", "not a CoolingUnit")])
def test_garbage_fails_the_poll_cleanly(garbage_url: str, mode: str, message: str) -> None:
    Garbage.mode = mode
    with pytest.raises(DeviceError, match=message):
        RedfishCdu("bad", garbage_url, "1", auth="none").read()


def test_garbage_fields_read_as_none(garbage_url: str) -> None:
    Garbage.mode = "fields"
    r = RedfishCdu("bad", garbage_url, "1", auth="none").read()
    conn = r.connector("secondary")
    assert conn is not None
    assert (conn.flow_lpm, conn.supply_c, conn.return_c, conn.heat_reported_kw) == (None, 30, 41.5, None)
    assert r.density_kg_m3 is None and r.specific_heat_kj_kg_k == 3.9
    assert set(r.garbage) == {"DensityKgPerCubicMeter", "Reading"}
