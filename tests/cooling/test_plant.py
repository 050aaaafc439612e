"""The simulated plant as `bitten cooling simulate` assembles it from an agent configuration: CDU and meters on
their configured ports, meters that follow the CDU's load, and an agent reading all of it consistently."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from bitten.cooling.agent import Agent
from bitten.lab.doubles.cdu import ConstantLoad, SineLoad, SlurmLoad
from bitten.lab.doubles.plant import build_plant, parse_load, run_plant
from bitten.lab.doubles.slurm import MemorySlurm

from .helpers import agent_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_parse_load(tmp_path: Path) -> None:
    cfg = agent_config(tmp_path, "http://127.0.0.1:1")
    assert isinstance(parse_load("constant:12", cfg), ConstantLoad)
    assert isinstance(parse_load("sine:40:10:60", cfg), SineLoad)
    slurm = parse_load("slurm:lab-ctl", cfg)
    assert isinstance(slurm, SlurmLoad) and slurm.peaks == {"gpu01": pytest.approx(15.6), "gpu02": pytest.approx(15.6)}
    with pytest.raises(ValueError, match="expected"):
        parse_load("lots", cfg)


def test_slurm_load_follows_node_states() -> None:
    answers = iter(["n1 allocated\nn2 idle\n", "n1 idle\nn2 drained*\n"])
    load = SlurmLoad("ctl", {"n1": 10.0, "n2": 10.0}, every_s=0, runner=lambda argv: next(answers))
    assert load.it_power_kw() == pytest.approx(8.5 + 2.5)
    assert load.it_power_kw() == pytest.approx(2.5 + 1.0)


def test_plant_from_config_feeds_the_agent(tmp_path: Path) -> None:
    cdu_port, modbus_port = free_port(), free_port()
    cfg = agent_config(tmp_path, f"http://127.0.0.1:{cdu_port}", modbus_port)
    plant = build_plant(cfg, ConstantLoad(50.0), bind="127.0.0.1", cdu_port=cdu_port, modbus_port=modbus_port)
    assert plant.roles == {1: "heat", 2: "it", 3: "facility"}
    runner = threading.Thread(target=run_plant, args=(plant, ConstantLoad(50.0), 0.05), daemon=True)
    runner.start()
    agent = Agent(cfg, slurm=MemorySlurm(["gpu01", "gpu02"]))
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            agent.poll_once()
            if all(st.failures == 0 and st.last_ok for st in agent.devices.values()):
                break
            time.sleep(0.1)
        time.sleep(0.3)
        agent.poll_once()
        it = agent.meter_views["it-meter"].reading.by_quantity("electric_power")
        facility = agent.meter_views["dc-meter"].reading.by_quantity("electric_power")
        heat = agent.meter_views["dh-meter"]
        rack = next(c for c in agent.cdu_views["cdu-a"].connectors if c.side == "secondary")
        assert it == pytest.approx(50.0) and facility == pytest.approx(56.0)
        assert rack.heat_reported_kw == pytest.approx(42.5, abs=0.1)  # 85 % of the IT power reaches the loop
        assert rack.heat_computed_kw == pytest.approx(42.5, rel=0.02)
        assert heat.heat_reported_kw == pytest.approx(41.65, abs=0.1)
        assert heat.heat_computed_kw is not None and heat.divergence is not None and abs(heat.divergence) < 0.02
        assert agent.year_totals.get("it_energy") is not None
    finally:
        agent.close()
        plant.stop.set()
        runner.join(5)


def test_https_cdu_needs_a_tls_dir(tmp_path: Path) -> None:
    cfg = agent_config(tmp_path, "https://127.0.0.1:8444")
    with pytest.raises(ValueError, match="--tls-dir"):
        build_plant(cfg, ConstantLoad(1), bind="127.0.0.1", cdu_port=8444, modbus_port=5020)
