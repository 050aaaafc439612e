"""The agent end to end against the CDU simulator, the Modbus meters and an in-memory Slurm: alarms drain nodes
with a reason (once), a leak is never resumed automatically, other alarms resume where configured, an offline
device is retried with backoff and alarmed as stale, and /metrics carries the documented names."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bitten.cooling.actions import GpuPowerCapper
from bitten.cooling.agent import Agent, poll_backoff
from bitten.cooling.metrics import AgentCollector
from bitten.lab.doubles.slurm import MemorySlurm
from bitten.lab.httpserve import base_url

from .helpers import agent_config


def scrape(agent: Agent) -> dict[str, list[tuple[dict[str, str], float]]]:
    registry = CollectorRegistry()
    registry.register(AgentCollector(agent.status))
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def value(metrics: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    matches = [v for lab, v in metrics.get(name, []) if all(lab.get(k) == x for k, x in labels.items())]
    assert matches, f"{name}{labels} not in the metrics"
    return matches[0]


def test_leak_drains_once_and_is_never_resumed_automatically(tmp_path: Path, cdu_sim) -> None:  # type: ignore[no-untyped-def]
    sim, server = cdu_sim
    slurm = MemorySlurm(["gpu01", "gpu02"])
    agent = Agent(agent_config(tmp_path, base_url(server)), slurm=slurm)
    try:
        agent.poll_once()
        assert slurm.calls == []
        sim.set_fault(1, leak=True)
        agent.poll_once()
        assert slurm.calls[0][0] == "drain" and slurm.calls[0][1] == ("gpu01", "gpu02")
        assert slurm.calls[0][2].startswith("bitten-cooling: leak on cdu-a (loop loop-a): leak detected by Moisture")
        for _ in range(3):
            agent.poll_once()
        assert len(slurm.calls) == 1  # idempotent: already drained, nothing more to do
        m = scrape(agent)
        assert value(m, "bitten_cooling_alarm_active", loop="loop-a", kind="leak") == 1
        assert value(m, "bitten_cooling_leak_detected", cdu="cdu-a", detector="Moisture") == 1
        assert value(m, "bitten_cooling_actions_total", action="drain", result="done") == 1
        sim.set_fault(1, leak=False)
        for _ in range(3):
            agent.poll_once()
        assert "leak" not in agent.tracker.kinds("loop-a")
        assert [c[0] for c in slurm.calls] == ["drain"]  # cleared, but the nodes stay drained
        assert all(s.drained for s in slurm.nodes.values())
        held = [a for a in agent.state.actions() if a.action == "resume"]
        assert held and held[0].result == "held" and "operator" in held[0].detail
    finally:
        agent.close()


def test_low_flow_resumes_where_configured_and_leaves_other_drains_alone(tmp_path: Path, cdu_sim) -> None:  # type: ignore[no-untyped-def]
    sim, server = cdu_sim
    slurm = MemorySlurm(["gpu01", "gpu02"])
    cfg = agent_config(tmp_path, base_url(server))
    loop = cfg.loops["loop-a"]
    actions = {**loop.actions, "low_flow": loop.actions["low_flow"].model_copy(update={"resume_on_clear": True})}
    cfg.loops["loop-a"] = loop.model_copy(update={"actions": actions})
    agent = Agent(cfg, slurm=slurm)
    try:
        slurm.drain(["gpu02"], "admin: memory errors")  # someone else's drain: never resumed by the agent
        slurm.calls.clear()
        sim.set_fault(1, flow_lpm=5.0)
        agent.poll_once()
        assert slurm.calls == [("drain", ("gpu01",), slurm.nodes["gpu01"].reason)]
        assert "low_flow" in slurm.nodes["gpu01"].reason and "below the minimum 20" in slurm.nodes["gpu01"].reason
        sim.set_fault(1, flow_lpm=None)
        agent.poll_once()
        assert slurm.nodes["gpu01"].drained  # one clean poll is not enough (clear_polls = 2)
        agent.poll_once()
        assert not slurm.nodes["gpu01"].drained
        assert slurm.nodes["gpu02"].reason == "admin: memory errors"
        skipped = [a for a in agent.state.actions() if a.result == "skipped"]
        assert skipped and skipped[0].nodes == ("gpu02",)
    finally:
        agent.close()


def test_alarm_state_survives_a_restart(tmp_path: Path, cdu_sim) -> None:  # type: ignore[no-untyped-def]
    sim, server = cdu_sim
    slurm = MemorySlurm(["gpu01", "gpu02"])
    cfg = agent_config(tmp_path, base_url(server))
    agent = Agent(cfg, slurm=slurm)
    sim.set_fault(1, supply_c=55.0)
    agent.poll_once()
    agent.close()
    again = Agent(cfg, slurm=slurm)
    try:
        assert "high_supply_temperature" in again.tracker.kinds("loop-a")
        again.poll_once()
        assert len([c for c in slurm.calls if c[0] == "drain"]) == 1  # not drained twice, not forgotten
    finally:
        again.close()


def test_offline_cdu_backs_off_goes_stale_and_never_crashes(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    slurm = MemorySlurm(["gpu01", "gpu02"])
    agent = Agent(agent_config(tmp_path, f"http://127.0.0.1:{port}"), slurm=slurm, request_timeout=0.5)
    try:
        agent.poll_once()
        st = agent.devices["cdu-a"]
        assert st.failures == 1 and st.next_attempt > time.time() and "connection refused" in st.last_error
        agent.poll_once()
        assert st.failures == 1  # backing off: not retried before next_attempt
        agent.started -= 5  # stale_after_s is 1 s
        agent.poll_once()
        assert "stale" in agent.tracker.kinds("loop-a")
        assert slurm.calls == []  # stale alarms, but by default it does not drain
        m = scrape(agent)
        assert value(m, "bitten_cooling_device_up", device="cdu-a") == 0
        assert value(m, "bitten_cooling_device_stale", device="cdu-a") == 1
        assert value(m, "bitten_cooling_alarm_active", loop="loop-a", kind="stale") == 1
    finally:
        agent.close()


def test_backoff_grows_and_is_capped() -> None:
    delays = [poll_backoff(10.0).delay(n) for n in (1, 2, 3, 10, 30)]
    assert 8 <= delays[0] <= 12 and 16 <= delays[1] <= 24 and 32 <= delays[2] <= 48
    assert 48 <= delays[3] <= 72 and 48 <= delays[4] <= 72


def test_metrics_readings_heat_and_ledger(tmp_path: Path, cdu_sim, modbus_sim) -> None:  # type: ignore[no-untyped-def]
    _sim, server = cdu_sim
    modbus_sim.set(1, "supply_temperature", 55.0)
    modbus_sim.set(1, "return_temperature", 35.0)
    modbus_sim.set(1, "flow", 2.0)  # m3/h
    modbus_sim.set(1, "heat_power", 40.0)
    modbus_sim.set(1, "heat_energy", 1000.0)
    for unit, (kw, kwh) in {2: (50.0, 5000.0), 3: (56.0, 6000.0)}.items():
        modbus_sim.set(unit, "power", kw)
        modbus_sim.set(unit, "energy", kwh)
    agent = Agent(agent_config(tmp_path, base_url(server), modbus_sim.port), slurm=MemorySlurm(["gpu01", "gpu02"]))
    try:
        agent.poll_once()
        modbus_sim.set(1, "heat_energy", 1010.0)
        modbus_sim.set(2, "energy", 5020.0)
        modbus_sim.set(3, "energy", 6022.5)
        time.sleep(0.05)
        agent.poll_once()
        m = scrape(agent)
        flow = value(m, "bitten_cooling_flow_cubic_meters_per_second", cdu="cdu-a", side="secondary") * 60000
        dt = value(m, "bitten_cooling_delta_temperature_celsius", cdu="cdu-a", side="secondary")
        computed = value(m, "bitten_cooling_heat_computed_watts", cdu="cdu-a", side="secondary") / 1000
        reported = value(m, "bitten_cooling_heat_reported_watts", cdu="cdu-a", side="secondary") / 1000
        assert computed == pytest.approx(flow * dt * 0.0668, rel=0.01)  # 25 % PG from the CDU's Coolant object
        assert computed == pytest.approx(reported, rel=0.02)  # the simulator's physics agree with the agent's
        assert value(m, "bitten_cooling_heat_divergence_exceeded", cdu="cdu-a", side="secondary") == 0
        assert value(m, "bitten_cooling_meter_flow_cubic_meters_per_second", meter="dh-meter",
                     register="flow") == pytest.approx(2.0 / 3600)
        assert value(m, "bitten_cooling_meter_heat_computed_watts", meter="dh-meter") == pytest.approx(
            2000 / 60 * 20 * 0.0689 * 1000, rel=0.01)
        divergence = value(m, "bitten_cooling_meter_heat_divergence_ratio", meter="dh-meter")
        assert divergence == pytest.approx(0.149, abs=0.01)
        assert value(m, "bitten_cooling_device_up", device="dh-meter", kind="modbus") == 1
        assert value(m, "bitten_energy_ledger_joules_total", channel="reused_heat") == pytest.approx(10.0 * 3.6e6)
        assert value(m, "bitten_energy_ledger_joules_total", channel="it_energy") == pytest.approx(20.0 * 3.6e6)
        assert value(m, "bitten_energy_erf_ratio") == pytest.approx(10.0 / 22.5)
        assert value(m, "bitten_energy_pue_ratio") == pytest.approx(22.5 / 20.0)
        for name in ("bitten_cooling_pump_failed", "bitten_cooling_filter_healthy", "bitten_cooling_cdu_healthy",
                     "bitten_cooling_coolant_density_grams_per_cubic_meter",
                     "bitten_cooling_device_reading_age_seconds", "bitten_cooling_supply_temperature_setpoint_celsius"):
            assert name in m
    finally:
        agent.close()


def test_events_wake_the_agent_at_once(tmp_path: Path, cdu_sim) -> None:  # type: ignore[no-untyped-def]
    sim, server = cdu_sim
    cfg = agent_config(tmp_path, base_url(server), poll_interval_s=30.0)
    cdus = {"cdu-a": cfg.cdus["cdu-a"].model_copy(update={"events": True})}
    slurm = MemorySlurm(["gpu01", "gpu02"])
    agent = Agent(cfg.model_copy(update={"cdus": cdus}), slurm=slurm)
    import threading

    runner = threading.Thread(target=agent.run, daemon=True)
    runner.start()
    try:
        deadline = time.time() + 10
        while not (agent.listeners and agent.listeners[0].connected.is_set()) and time.time() < deadline:
            time.sleep(0.02)
        assert agent.listeners[0].connected.is_set()
        start = time.time()
        sim.set_fault(1, leak=True)
        while not slurm.calls and time.time() - start < 10:
            time.sleep(0.01)
        assert slurm.calls and slurm.calls[0][0] == "drain"
        assert time.time() - start < 10  # far sooner than the 30 s poll interval (the bench measures it)
        assert agent.events_total >= 1
    finally:
        agent.stop.set()
        agent.wake.set()
        runner.join(5)
        agent.close()


def test_gpu_power_cap_command(tmp_path: Path) -> None:
    log = tmp_path / "calls"
    capper = GpuPowerCapper(["sh", "-c", f"echo $0 $1 >> {log}", "{node}", "{watts}"])
    capper.set_limit("gpu01", 600)
    assert log.read_text() == "gpu01 600\n"
    assert GpuPowerCapper(("ssh", "{node}", "nvidia-smi", "-pl", "{watts}")).command("gpu07", 500) == [
        "ssh", "gpu07", "nvidia-smi", "-pl", "500"]
    with pytest.raises(RuntimeError, match="exit 3"):
        GpuPowerCapper(["sh", "-c", "exit 3"]).set_limit("x", 1)


def test_high_temperature_caps_gpus_and_uncaps_on_clear(tmp_path: Path, cdu_sim) -> None:  # type: ignore[no-untyped-def]
    sim, server = cdu_sim
    log = tmp_path / "caps"
    cfg = agent_config(tmp_path, base_url(server), gpu_power_command=["sh", "-c", f"echo $0 $1 >> {log}", "{node}",
                                                                       "{watts}"])
    loop = cfg.loops["loop-a"]
    hot = loop.actions["high_supply_temperature"].model_copy(update={"cap_gpu_power_percent": 60,
                                                                     "resume_on_clear": True})
    cfg.loops["loop-a"] = loop.model_copy(update={"actions": {**loop.actions, "high_supply_temperature": hot}})
    slurm = MemorySlurm(["gpu01", "gpu02"])
    agent = Agent(cfg, slurm=slurm)
    try:
        sim.set_fault(1, supply_c=50.0)
        agent.poll_once()
        agent.poll_once()
        assert log.read_text().splitlines() == ["gpu01 600", "gpu02 600"]  # once per node, not per poll
        sim.set_fault(1, supply_c=None)
        agent.poll_once()
        agent.poll_once()
        assert log.read_text().splitlines()[2:] == ["gpu01 1000", "gpu02 1000"]
        assert not any(s.drained for s in slurm.nodes.values())
    finally:
        agent.close()


def test_a_counter_glitch_never_becomes_energy(tmp_path: Path, cdu_sim, modbus_sim) -> None:  # type: ignore[no-untyped-def]
    """The Modbus server answers 0xFFFFFFFF for the heat meter's energy counter once: a gap, never 4.29e7 kWh."""
    _sim, server = cdu_sim
    modbus_sim.set(1, "heat_energy", 1000.0)
    for unit in (2, 3):
        modbus_sim.set(unit, "energy", 100.0)
    cfg = agent_config(tmp_path, base_url(server), modbus_sim.port)
    cfg.modbus["dh-meter"] = cfg.modbus["dh-meter"].model_copy(update={"max_power_kw": None})  # the default
    agent = Agent(cfg, slurm=MemorySlurm(["gpu01", "gpu02"]))
    try:
        agent.poll_once()
        time.sleep(1.0)
        modbus_sim.set(1, "heat_energy", 1000.5)
        agent.poll_once()
        assert agent.totals["reused_heat"] == pytest.approx(0.5)
        modbus_sim.set_raw(1, 4, 6, [0xFFFF, 0xFFFF])  # a glitch: the counter reads 42949672.95 kWh
        agent.poll_once()
        modbus_sim.set(1, "heat_energy", 1001.0)
        agent.poll_once()
        assert agent.totals["reused_heat"] == pytest.approx(0.5)  # nothing added for good
        gaps = agent.ledger.store.total("reused_heat", 0, time.time() + 1).gaps  # type: ignore[union-attr]
        assert gaps[0].reason.endswith("a glitch, not energy")
        assert value(scrape(agent), "bitten_energy_ledger_joules_total", channel="reused_heat") == pytest.approx(
            0.5 * 3.6e6)
    finally:
        agent.close()


def test_status_and_metrics_are_served(tmp_path: Path, cdu_sim) -> None:  # type: ignore[no-untyped-def]
    """/status is the read-only interface other programs read the alarms from; /metrics beside it."""
    import requests

    from bitten.cooling.serve import serve

    sim, server = cdu_sim
    agent = Agent(agent_config(tmp_path, base_url(server)), slurm=MemorySlurm(["gpu01", "gpu02"]))
    http, _thread = serve(agent.status, "127.0.0.1", 0)
    session = requests.Session()
    session.trust_env = False
    try:
        sim.set_fault(1, leak=True, sensors={"secondary.flow": "@nan"})
        agent.poll_once()
        url = f"http://127.0.0.1:{http.server_port}"
        status = session.get(f"{url}/status", timeout=5).json()
        assert status["version"] == 1 and status["site"] == "test"
        loop = status["loops"]["loop-a"]
        assert loop["nodes"] == ["gpu01", "gpu02"] and loop["alarms"]["leak"]["severity"] == "Critical"
        assert "FlowLitersPerMinute.Reading" in loop["unknown"]["low_flow"]
        assert status["devices"]["cdu-a"]["up"] is True and status["stores"]["ledger"]["available"] is True
        assert "bitten_cooling_alarm_active" in session.get(f"{url}/metrics", timeout=5).text
        assert session.post(f"{url}/status", timeout=5).status_code == 405
    finally:
        http.shutdown()
        agent.close()


def test_check_reads_every_device_once(tmp_path: Path, cdu_sim, modbus_sim) -> None:  # type: ignore[no-untyped-def]
    import yaml
    from typer.testing import CliRunner

    from bitten.cli import app

    _sim, server = cdu_sim
    cfg = agent_config(tmp_path, base_url(server), modbus_sim.port)
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json", by_alias=True)))
    result = CliRunner().invoke(app, ["cooling", "check", "--config", str(path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    for device in ("cdu-a", "dh-meter", "it-meter", "dc-meter"):
        assert device in result.output
    assert "health OK" in result.output
