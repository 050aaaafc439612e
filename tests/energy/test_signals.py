"""The signal client against the local Energi Data Service TEST DOUBLE: recorded answers, broken ones, the cache
and its fallbacks, the deadline; the heat network through a real Modbus server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import requests

from bitten.energy.energinet import (
    DANISH_TIME,
    DATASETS,
    Cache,
    EnergiDataService,
    SourceError,
    parse_records,
    top_hours_rank,
)
from bitten.energy.heatnet import HeatNetwork
from bitten.energy.signals import SignalHealth
from bitten.energy.traces import generate, to_records
from bitten.lab.doubles.energinet import SignalServer, in_thread, serve
from bitten.lab.doubles.modbus import ModbusSim
from bitten.site.model import GridSignals, HeatSignals, ModbusDevice, RegisterMap

NOW = time.time()
HOUR = NOW - NOW % 3600


@pytest.fixture
def server() -> Iterator[SignalServer]:
    trace = generate(HOUR - 2 * 86400, HOUR + 2 * 86400, 300.0, seed=3)
    srv = serve(to_records(trace))
    in_thread(srv)
    yield srv
    srv.shutdown()


def grid(srv: SignalServer, **kw: float) -> GridSignals:
    host, port = srv.server_address[:2]
    return GridSignals(url=f"http://{host}:{port}", **{"timeout_s": 2.0, "deadline_s": 4.0, **kw})


def client(srv: SignalServer, tmp_path: Path | None = None, **kw: float) -> EnergiDataService:
    cache = Cache(tmp_path / "cache.json") if tmp_path else None
    return EnergiDataService(grid(srv, **kw), cache=cache, health=SignalHealth())


def fault(srv: SignalServer, mode: str, delay_s: float = 0.0) -> None:
    host, port = srv.server_address[:2]
    requests.post(f"http://{host}:{port}/testdouble/fault", json={"mode": mode, "delay_s": delay_s}, timeout=5)


def test_answers_in_the_api_shape(server: SignalServer) -> None:
    host, port = server.server_address[:2]
    start = datetime.fromtimestamp(HOUR - 3600, DANISH_TIME).strftime("%Y-%m-%dT%H:%M")
    end = datetime.fromtimestamp(HOUR, DANISH_TIME).strftime("%Y-%m-%dT%H:%M")
    doc = requests.get(f"http://{host}:{port}/dataset/CO2Emis", timeout=5, params={
        "start": start, "end": end, "filter": json.dumps({"PriceArea": ["DK1"]}), "sort": "Minutes5UTC ASC"}).json()
    assert doc["dataset"] == "CO2Emis" and doc["total"] == 12 and len(doc["records"]) == 12
    assert set(doc["records"][0]) == {"Minutes5UTC", "Minutes5DK", "PriceArea", "CO2Emission"}
    points, garbage = parse_records(doc, DATASETS["CO2Emis"], "DK1", "DKK")
    assert garbage == 0 and points[0].t == HOUR - 3600 and points[-1].t == HOUR - 300
    other = requests.get(f"http://{host}:{port}/dataset/CO2Emis", timeout=5,
                         params={"filter": json.dumps({"PriceArea": ["DK2"]})}).json()
    assert other["total"] == 0
    assert requests.get(f"http://{host}:{port}/dataset/Nope", timeout=5).status_code == 400


def test_fresh_signals(server: SignalServer) -> None:
    eds = client(server)
    eds.refresh()
    r = eds.readings()
    assert r["co2"].status == "ok" and r["co2"].value is not None and r["co2"].unit == "g/kWh"
    assert NOW - r["co2"].at < 600  # type: ignore[operator]
    assert r["co2_forecast"].status == "ok"
    assert r["price"].status == "ok" and r["price"].unit == "DKK/MWh"
    assert r["price"].at is not None and r["price"].at % 900 == 0
    points, complete = eds.price_day(NOW)
    assert complete and len(points) in (92, 96, 100)
    rank, why = top_hours_rank(points, complete, NOW, 900)
    assert rank is not None and 1 <= rank <= len(points) and why == ""
    assert eds.health.sources["energinet:CO2Emis"].requests_total == 1


def test_server_down_no_value_but_a_reason_and_a_metric(server: SignalServer) -> None:
    fault(server, "down")
    eds = client(server, timeout_s=0.5, deadline_s=1.5)
    eds.refresh()
    r = eds.readings()
    assert r["co2"].status == "down" and r["co2"].value is None and "HTTP 503" in r["co2"].reason
    assert r["price"].status == "down" and not r["price"].usable
    health = eds.health.sources["energinet:CO2Emis"]
    assert health.errors_total == 1 and health.requests_total == 1
    assert set(eds.health.alarms()) == {"co2", "co2_forecast", "price"}
    assert eds.health.not_ok_total[("co2", "down")] == 1


def test_retries_under_the_deadline(server: SignalServer) -> None:
    fault(server, "down")
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    eds = EnergiDataService(grid(server, timeout_s=0.5, deadline_s=2.5), sleep=sleep)
    before = server.store.requests
    started = time.monotonic()
    with pytest.raises(SourceError, match="HTTP 503"):
        eds.fetch("CO2Emis", HOUR - 3600, HOUR)
    assert server.store.requests - before == len(slept) + 1 >= 2  # retried
    assert time.monotonic() - started <= 2.5  # never past the deadline


def test_a_slow_server_costs_at_most_the_deadline(server: SignalServer) -> None:
    fault(server, "slow", delay_s=2.0)
    eds = client(server, timeout_s=0.3, deadline_s=1.0)
    started = time.monotonic()
    eds.refresh()
    took = time.monotonic() - started
    assert eds.readings()["co2"].status == "down"
    assert "ReadTimeout" in eds.fetch_status["CO2Emis"][1]
    assert took < 3 * (1.0 + 0.5)  # three datasets, each within its deadline (plus one timeout)


def test_garbage(server: SignalServer) -> None:
    fault(server, "garbage")
    eds = client(server)
    eds.refresh()
    r = eds.readings()
    assert r["co2"].status == "garbage" and "not JSON" in r["co2"].reason
    assert eds.health.sources["energinet:CO2Emis"].garbage_total == 1


def test_garbage_records_are_skipped_not_believed() -> None:
    spec = DATASETS["CO2Emis"]
    doc = {"dataset": "CO2Emis", "records": [
        {"Minutes5UTC": "2026-12-01T10:00:00", "PriceArea": "DK1", "CO2Emission": 120.5},
        {"Minutes5UTC": "2026-12-01T10:05:00", "PriceArea": "DK1", "CO2Emission": "NaN"},
        {"Minutes5UTC": "2026-12-01T10:10:00", "PriceArea": "DK1", "CO2Emission": -4},
        {"Minutes5UTC": "2026-12-01T10:11:00", "PriceArea": "DK1", "CO2Emission": 100},
        {"Minutes5UTC": "yesterday", "PriceArea": "DK1", "CO2Emission": 100},
        {"Minutes5UTC": "2026-12-01T10:15:00", "PriceArea": "DK2", "CO2Emission": 100},
        {"Minutes5UTC": "2026-12-01T10:20:00", "PriceArea": "DK1", "CO2Emission": True},
        "not a record",
    ]}
    points, garbage = parse_records(doc, spec, "DK1", "DKK")
    assert [p.value for p in points] == [120.5] and garbage == 7
    with pytest.raises(SourceError, match="no records list"):
        parse_records({"records": "x"}, spec, "DK1", "DKK")
    with pytest.raises(SourceError, match="for dataset 'Elspotprices'"):
        parse_records({"dataset": "Elspotprices", "records": []}, spec, "DK1", "DKK")


def test_late_realised_data_falls_back_to_the_forecast(server: SignalServer) -> None:
    fault(server, "late")
    eds = client(server, max_age_s=900)
    eds.refresh()
    r = eds.readings()
    assert eds.realised_co2(NOW).status == "stale"
    assert r["co2"].status == "fallback" and r["co2"].usable
    assert "forecast stands in" in r["co2"].reason and r["co2"].source == "energinet:CO2EmisProg"


def test_forecast_in_the_past(server: SignalServer) -> None:
    fault(server, "past_forecast")
    eds = client(server)
    eds.refresh()
    assert eds.readings()["co2_forecast"].status == "forecast_in_past"


def test_late_and_no_forecast_is_unknown(server: SignalServer) -> None:
    eds = client(server, max_age_s=900)
    fault(server, "late")
    eds.refresh()
    forecast = eds.cache.points["CO2EmisProg"]
    eds.cache.points["CO2EmisProg"] = {t: v for t, v in forecast.items() if t < NOW - 900}
    r = eds.readings()
    assert r["co2_forecast"].status == "forecast_in_past"
    assert r["co2"].status == "stale" and r["co2"].value is None and "s old" in r["co2"].reason


def test_cache_survives_a_restart_and_an_outage(server: SignalServer, tmp_path: Path) -> None:
    eds = client(server, tmp_path)
    eds.refresh()
    price = eds.readings()["price"]
    fault(server, "down")
    again = client(server, tmp_path, timeout_s=0.5, deadline_s=1.0)
    again.refresh()
    cached = again.readings()["price"]
    assert cached.status == "ok" and cached.value == price.value and cached.source.endswith("(cache)")
    # realised CO2 from the cache is usable only while it is young enough
    later = again.readings(NOW + 7200)
    assert later["co2"].status in ("stale", "fallback")


def test_refresh_is_rate_limited(server: SignalServer) -> None:
    eds = client(server)
    eds.refresh()
    before = server.store.requests
    eds.refresh()
    assert server.store.requests == before


def test_top_hours_on_a_dst_day() -> None:
    from bitten.energy.signals import Point

    day = datetime(2026, 10, 25, tzinfo=DANISH_TIME).timestamp()  # 25 hours long
    points = [Point(day + i * 900, float(i)) for i in range(100)]
    assert top_hours_rank(points, True, day + 99 * 900 + 1, 900)[0] == 1
    assert top_hours_rank(points, True, day, 900)[0] == 100
    assert top_hours_rank(points[:-1], False, day, 900) == (None, "the day's prices are incomplete (99 periods)")


# --- heat network ---------------------------------------------------------------------------------------------

HEAT_MAP = RegisterMap.model_validate({"registers": {
    "heat_demand": {"address": 0, "function": 4, "type": "uint16", "unit": "kW", "quantity": "heat_power"},
    "requested_supply_temperature": {"address": 1, "function": 4, "type": "int16", "scale": 0.01, "unit": "degC",
                                     "quantity": "supply_temperature_setpoint", "invalid": [192]},
}})


@pytest.fixture
def heat_sim() -> Iterator[ModbusSim]:
    sim = ModbusSim({1: HEAT_MAP})
    sim.start()
    yield sim
    sim.stop()


def heat_client(sim: ModbusSim, clock: list[float]) -> HeatNetwork:
    device = ModbusDevice(host="127.0.0.1", port=sim.port, unit=1, register_map="heat")
    cfg = HeatSignals(device="dh", demand_register="heat_demand",
                      requested_supply_temperature_register="requested_supply_temperature", max_age_s=60)
    return HeatNetwork(cfg, device, HEAT_MAP, clock=lambda: clock[0], timeout=0.5)


def test_heat_network(heat_sim: ModbusSim) -> None:
    heat_sim.set(1, "heat_demand", 420)
    heat_sim.set(1, "requested_supply_temperature", 66.5)
    clock = [time.time()]
    net = heat_client(heat_sim, clock)
    r = net.readings()
    assert r["heat_demand"].status == "ok" and r["heat_demand"].value == 420 and r["heat_demand"].unit == "kW"
    assert r["requested_supply_temperature"].value == pytest.approx(66.5)
    assert r["requested_supply_temperature"].source == "modbus:dh/requested_supply_temperature"
    heat_sim.set(1, "requested_supply_temperature", 192)  # an open sensor
    r = net.readings()
    assert r["requested_supply_temperature"].status == "fallback"
    clock[0] += 120
    r = net.readings()
    assert r["requested_supply_temperature"].status == "missing" and r["requested_supply_temperature"].value is None
    assert "open sensor" in r["requested_supply_temperature"].reason
    net.close()


def test_heat_network_down_goes_stale(heat_sim: ModbusSim) -> None:
    heat_sim.set(1, "heat_demand", 300)
    heat_sim.set(1, "requested_supply_temperature", 60)
    clock = [time.time()]
    net = heat_client(heat_sim, clock)
    assert net.readings()["heat_demand"].usable
    heat_sim.stop()
    net.close()
    r = net.readings()
    assert r["heat_demand"].status == "fallback"
    clock[0] += 61
    r = net.readings()
    assert r["heat_demand"].status == "stale" and not r["heat_demand"].usable
    assert net.health.sources["modbus:dh"].errors_total == 2


def test_a_drills_peak_lasts_at_least_as_long_as_asked(server: SignalServer) -> None:
    """The double's records are 5-minute ones; a peak from now for 60 s must not end at the next record when now
    is late in its 5 minutes (the lab drill's peak did: it could be over in seconds)."""
    host, port = server.server_address[:2]
    answer = requests.post(f"http://{host}:{port}/testdouble/peak", json={"before_s": 0, "peak_s": 60, "high": 420,
                                                                         "low": 110}, timeout=5).json()
    now = time.time()
    assert answer["peak_start"] <= now and answer["peak_end"] >= now + 55
    doc = requests.get(f"http://{host}:{port}/dataset/CO2EmisProg", params={"limit": 0}, timeout=5).json()
    forecast = {p.t: p.value for p in parse_records(doc, DATASETS["CO2EmisProg"], "DK1", "DKK")[0]}
    slot = now - now % 300
    assert forecast[slot] == 420 and forecast[(now + 60) - (now + 60) % 300] == 420
    assert forecast[slot - 300] == 110 and forecast[(now + 60) - (now + 60) % 300 + 300] == 110
    eds = client(server)
    eds.refresh()
    reading = eds.readings(now)["co2"]
    assert reading.usable and reading.value == 420
