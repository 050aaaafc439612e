"""Unknown is not OK, at the agent level: the agent against the project's CDU simulator, its alarm state and the
Slurm actions it takes (an in-memory Slurm), when an alarm's input reads NaN, null, Infinity, a string, nothing at all,
or an implausible value. Such a reading keeps the alarm's previous state -- it neither clears an alarm nor resumes
nodes nor uncaps GPUs -- and, unknown for long enough, raises sensor_lost with its own action."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from bitten.cooling.agent import Agent
from bitten.lab.doubles.slurm import MemorySlurm
from bitten.lab.httpserve import base_url

from .helpers import agent_config
from .test_agent import scrape, value

GARBAGE: list[Any] = ["@nan", None, "@inf", "lots", "@missing"]
IDS = ["NaN", "null", "Infinity", "string", "missing"]


def _agent(tmp_path: Path, server: Any, *, resume: bool = True, **overrides: Any) -> tuple[Agent, MemorySlurm, Any]:
    slurm = MemorySlurm(["gpu01", "gpu02"])
    log = tmp_path / "caps"
    cfg = agent_config(tmp_path, base_url(server), gpu_power_command=["sh", "-c", f"echo $0 $1 >> {log}", "{node}",
                                                                       "{watts}"], **overrides)
    loop = cfg.loops["loop-a"]
    actions = dict(loop.actions)
    for kind in ("low_flow", "high_supply_temperature", "pump_failed"):
        actions[kind] = actions[kind].model_copy(update={"resume_on_clear": resume})
    actions["high_supply_temperature"] = actions["high_supply_temperature"].model_copy(
        update={"cap_gpu_power_percent": 60})
    cfg.loops["loop-a"] = loop.model_copy(update={"actions": actions})
    return Agent(cfg, slurm=slurm), slurm, log


# (the fault that raises the alarm, the alarm kind, the sensor that then goes bad)
CASES = [
    ({"flow_lpm": 5.0}, "low_flow", "secondary.flow"),
    ({"supply_c": 55.0}, "high_supply_temperature", "secondary.supply"),
    ({"leak": True}, "leak", "leak"),
    ({"pump_failed": True}, "pump_failed", "pump.2"),
]


@pytest.mark.parametrize("garbage", GARBAGE, ids=IDS)
@pytest.mark.parametrize(("fault", "kind", "sensor"), CASES, ids=[c[1] for c in CASES])
def test_an_unreadable_input_never_clears_its_alarm(tmp_path: Path, cdu_sim: Any, fault: dict[str, Any], kind: str,
                                                     sensor: str, garbage: Any) -> None:
    sim, server = cdu_sim
    agent, slurm, caps = _agent(tmp_path, server)
    try:
        sim.set_fault(1, **fault)
        agent.poll_once()
        assert kind in agent.tracker.kinds("loop-a")
        assert all(s.drained for s in slurm.nodes.values())
        # the fault is still there, but its sensor stops telling (and the CDU's own conditions say nothing): the
        # alarm must stay, the nodes stay drained
        sim.set_fault(1, sensors={sensor: garbage, "conditions": "@missing"})
        for _ in range(agent.config.clear_polls + 3):
            agent.poll_once()
        assert kind in agent.tracker.kinds("loop-a"), f"{kind} cleared from an unknown input"
        assert kind in agent.tracker.unknown_kinds("loop-a")
        assert all(s.drained for s in slurm.nodes.values()), "nodes resumed from an unknown input"
        assert [c[0] for c in slurm.calls] == ["drain"]
        if kind == "high_supply_temperature":
            assert caps.read_text().splitlines() == ["gpu01 600", "gpu02 600"]  # capped once, never restored
        m = scrape(agent)
        assert value(m, "bitten_cooling_alarm_active", loop="loop-a", kind=kind) == 1
        assert value(m, "bitten_cooling_alarm_input_unknown", loop="loop-a", kind=kind) == 1
        if kind == "leak":  # an unknown detector is not a detector that reads OK
            assert not [v for lab, v in m.get("bitten_cooling_leak_detected", []) if lab.get("cdu") == "cdu-a"]
        # the sensor comes back and shows the fault gone: now, and only now, the alarm clears
        sim.set_fault(1, sensors={}, leak=False, pump_failed=False, flow_lpm=None, supply_c=None)
        for _ in range(agent.config.clear_polls):
            agent.poll_once()
        assert kind not in agent.tracker.kinds("loop-a")
        assert kind not in agent.tracker.unknown_kinds("loop-a")
    finally:
        agent.close()


@pytest.mark.parametrize(("sensor", "reading", "kind"), [
    ("secondary.supply", 328.15, "high_supply_temperature"),  # kelvin, not degC
    ("secondary.supply", -300.0, "high_supply_temperature"),
    ("secondary.flow", -5.0, "low_flow"),  # negative flow (negative heat)
    ("secondary.flow", 1e300, "low_flow"),
], ids=["kelvin", "below-absolute-zero", "negative-flow", "1e300-flow"])
def test_implausible_values_are_unknown_not_measurements(tmp_path: Path, cdu_sim: Any, sensor: str,
                                                         reading: float, kind: str) -> None:
    sim, server = cdu_sim
    agent, slurm, _caps = _agent(tmp_path, server)
    try:
        agent.poll_once()
        sim.set_fault(1, sensors={sensor: reading})
        agent.poll_once()
        view = agent.cdu_views["cdu-a"]
        conn = next(c for c in view.connectors if c.side == "secondary")
        assert reading not in (conn.supply_c, conn.flow_lpm)  # never used as given
        if sensor.endswith("flow"):
            assert conn.heat_computed_kw is None  # so no heat is computed from it either
        assert kind in agent.tracker.unknown_kinds("loop-a") and "implausible" in agent.tracker.unknown_kinds(
            "loop-a")[kind]
        assert slurm.calls == []  # unknown raises nothing by itself
        assert agent.devices["cdu-a"].garbage_total >= 1
    finally:
        agent.close()


def test_implausible_coolant_properties_fall_back_to_the_table(tmp_path: Path, cdu_sim: Any) -> None:
    sim, server = cdu_sim
    cfg = agent_config(tmp_path, base_url(server))
    cfg = cfg.model_copy(update={"coolants": {"pg25": cfg.coolants["pg25"]}})
    agent = Agent(cfg, slurm=MemorySlurm(["gpu01", "gpu02"]))
    try:
        sim.set_fault(1, sensors={"coolant.density": 1e300})
        agent.poll_once()
        reading = agent.cdu_views["cdu-a"].reading
        assert reading.density_kg_m3 is None and "implausible" in reading.problems["coolant.density"]
        conn = next(c for c in agent.cdu_views["cdu-a"].connectors if c.side == "secondary")
        assert conn.props is not None and conn.props.source.startswith("table:")  # not 1e300 kg/m3
        assert conn.heat_computed_kw is not None and conn.heat_computed_kw < 1e6
    finally:
        agent.close()


def test_plausibility_is_configurable(tmp_path: Path, cdu_sim: Any) -> None:
    sim, server = cdu_sim
    agent, _slurm, _caps = _agent(tmp_path, server, plausibility={"temperature_c": {"min": 0, "max": 40}})
    try:
        sim.set_fault(1, sensors={"secondary.supply": 45.0})  # plausible by default, not for this site
        agent.poll_once()
        assert "implausible" in agent.tracker.unknown_kinds("loop-a")["high_supply_temperature"]
    finally:
        agent.close()


def test_unknown_for_too_long_raises_sensor_lost_with_its_action(tmp_path: Path, cdu_sim: Any) -> None:
    sim, server = cdu_sim
    agent, slurm, _caps = _agent(tmp_path, server, sensor_lost_after_s=0.3)
    loop = agent.config.loops["loop-a"]
    # sensor_lost drains here (configurable; by default it only alarms)
    loop.actions["sensor_lost"] = loop.actions["sensor_lost"].model_copy(update={"drain": True})
    try:
        agent.poll_once()
        sim.set_fault(1, sensors={"secondary.flow": "@nan"})
        agent.poll_once()
        assert "sensor_lost" not in agent.tracker.kinds("loop-a") and slurm.calls == []
        time.sleep(0.35)
        agent.poll_once()
        lost = agent.tracker.kinds("loop-a").get("sensor_lost")
        assert lost is not None and "low_flow" in lost.detail and "FlowLitersPerMinute" in lost.detail
        assert slurm.calls and slurm.calls[0][0] == "drain" and "sensor_lost" in slurm.calls[0][2]
        m = scrape(agent)
        assert value(m, "bitten_cooling_alarm_active", loop="loop-a", kind="sensor_lost") == 1
        sim.set_fault(1, sensors={})
        for _ in range(agent.config.clear_polls):
            agent.poll_once()
        assert "sensor_lost" not in agent.tracker.kinds("loop-a")
    finally:
        agent.close()


def test_sensor_lost_by_default_only_alarms(tmp_path: Path, cdu_sim: Any) -> None:
    sim, server = cdu_sim
    agent, slurm, _caps = _agent(tmp_path, server, sensor_lost_after_s=0.1)
    try:
        sim.set_fault(1, sensors={"leak": "@missing"})
        agent.poll_once()
        time.sleep(0.15)
        agent.poll_once()
        assert "sensor_lost" in agent.tracker.kinds("loop-a") and slurm.calls == []
    finally:
        agent.close()
