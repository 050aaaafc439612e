"""Bounded time and size per device, at the agent level: a CDU of the project's simulator that drips its answer
one byte every half second delays nothing but itself (a leak on another, healthy loop is drained within its budget,
and the dripping CDU goes stale and alarms), and a 100 MiB answer fails its read without being held in memory."""

from __future__ import annotations

import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bitten.cooling.agent import Agent
from bitten.cooling.config import parse_config
from bitten.cooling.errors import DeviceError
from bitten.cooling.redfish import RedfishCdu
from bitten.lab.doubles.cdu import CduSimulator, ConstantLoad, Plant, serve_cdus
from bitten.lab.doubles.slurm import MemorySlurm
from bitten.lab.httpserve import Server, base_url, in_thread

from .helpers import agent_config

#: leak to drain on the healthy loop, while the other CDU drips: one poll interval plus one read, with room for
#: a loaded machine; on a poller that waits for every device it is the dripping CDU's whole answer (hours)
BUDGET_S = 4.0


@pytest.fixture
def two_cdus() -> Iterator[tuple[CduSimulator, Server]]:
    sim = CduSimulator([Plant(ConstantLoad(60.0)), Plant(ConstantLoad(60.0))], username="agent", password="s3cret")
    server = serve_cdus(sim)
    in_thread(server)
    yield sim, server
    server.shutdown()


def _two_loop_config(tmp_path: Path, url: str, **overrides: Any) -> Any:
    base = agent_config(tmp_path, url).model_dump(mode="json", by_alias=True)
    base["cdus"]["cdu-b"] = {**base["cdus"]["cdu-a"], "cdu_id": "2"}
    base["loops"]["loop-b"] = {**base["loops"]["loop-a"], "cdu": "cdu-b",
                               "nodes": [{"name": "gpu03", "gpus": 8, "gpu_max_power_watts": 1000}]}
    base.update({"read_deadline_s": 2.0, "stale_after_s": 1.5, **overrides})
    return parse_config(base)


def test_a_dripping_cdu_delays_nothing_but_itself(tmp_path: Path, two_cdus: tuple[CduSimulator, Server]) -> None:
    sim, server = two_cdus
    slurm = MemorySlurm(["gpu01", "gpu02", "gpu03"])
    agent = Agent(_two_loop_config(tmp_path, base_url(server)), slurm=slurm)
    runner = threading.Thread(target=agent.run, daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while not all(st.last_ok for st in agent.devices.values()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert all(st.last_ok for st in agent.devices.values())
        sim.set_fault(1, drip_s=0.5)  # cdu-a answers one byte every half second from now on
        time.sleep(0.5)  # a read of cdu-a is dripping now
        start = time.monotonic()
        sim.set_fault(2, leak=True)
        while not any(c[0] == "drain" and "gpu03" in c[1] for c in slurm.calls):
            assert time.monotonic() - start < BUDGET_S, "the leak on the healthy loop waited for the dripping CDU"
            time.sleep(0.01)
        elapsed = time.monotonic() - start
        assert elapsed < BUDGET_S
        # the dripping CDU fails its reads at the deadline and goes stale: alarmed, its nodes not drained (stale
        # does not drain by default)
        st = agent.devices["cdu-a"]
        deadline = time.monotonic() + 10
        while not ("stale" in agent.tracker.kinds("loop-a") and st.failures) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "stale" in agent.tracker.kinds("loop-a")
        assert st.failures >= 1 and "deadline" in st.last_error
        assert st.duration_s < 2.0 + 1.0  # the read deadline, not the answer's length
        assert not any("gpu01" in c[1] for c in slurm.calls)
    finally:
        agent.stop.set()
        agent.wake.set()
        runner.join(10)
        agent.close()


def test_a_hung_read_goes_stale_while_it_hangs(tmp_path: Path, two_cdus: tuple[CduSimulator, Server]) -> None:
    sim, server = two_cdus
    cfg = _two_loop_config(tmp_path, base_url(server), read_deadline_s=30.0, stale_after_s=0.8)
    agent = Agent(cfg, slurm=MemorySlurm(["gpu01", "gpu02", "gpu03"]))
    runner = threading.Thread(target=agent.run, daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while not agent.devices["cdu-a"].last_ok and time.monotonic() < deadline:
            time.sleep(0.02)
        sim.set_fault(1, drip_s=0.5)  # one read of cdu-a now takes far longer than stale_after_s
        deadline = time.monotonic() + 5
        while "stale" not in agent.tracker.kinds("loop-a") and time.monotonic() < deadline:
            time.sleep(0.05)
        alarm = agent.tracker.kinds("loop-a").get("stale")
        assert alarm is not None and "a read running for" in alarm.detail
        assert agent.devices["cdu-a"].busy_since is not None  # the read still hangs: stale came from the watch
        assert "stale" not in agent.tracker.kinds("loop-b")
    finally:
        sim.set_fault(1, drip_s=None)
        agent.stop.set()
        agent.wake.set()
        runner.join(10)
        agent.close()


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "until-close"])
def test_a_100_mib_answer_is_refused_without_holding_it(cdu_sim: Any, declared: bool) -> None:
    sim, server = cdu_sim
    cdu = RedfishCdu("big", base_url(server), "1", username="agent", password="s3cret", deadline_s=30.0)
    cdu.read()  # the service root and the login happen before the big answer
    sim.set_fault(1, pad_bytes=100 * 1024 * 1024, pad_declared=declared)
    tracemalloc.start()
    try:
        with pytest.raises(DeviceError, match="4194304-byte cap"):
            cdu.read()
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024, f"{peak / 2**20:.0f} MiB held for a refused answer"
    sim.set_fault(1, pad_bytes=0)
    assert cdu.read().health == "OK"  # the next answer of normal size reads again
    cdu.close()


def test_the_size_cap_is_configuration(tmp_path: Path, cdu_sim: Any) -> None:
    sim, server = cdu_sim
    agent = Agent(agent_config(tmp_path, base_url(server), max_response_bytes=64 * 1024),
                  slurm=MemorySlurm(["gpu01", "gpu02"]))
    try:
        sim.set_fault(1, pad_bytes=128 * 1024)
        agent.poll_once()
        assert agent.devices["cdu-a"].failures == 1 and "65536-byte cap" in agent.devices["cdu-a"].last_error
    finally:
        agent.close()
