"""Cooling bench: time from a leak appearing to the nodes drained, also while another CDU drips its answer, and CPU
time per poll cycle with 100 CDUs. Every figure is a ratio against a baseline measured in the same run.

* Leak to drain. Baseline: one bare HTTP GET of the CDU document from the same simulator (the least time in which
  anything can learn about the leak over Redfish). With the EventService's server-sent events the agent is woken
  by the event and confirms it with a poll; without them (polling only) the latency is bounded by the poll
  interval, so that figure is also given as a fraction of the interval.
* Leak to drain on a healthy loop while another CDU drips its answer one byte every 0.5 s (issue 11). Baseline:
  the same measurement without the dripping CDU. A poller that waits for every device is held by the dripping one
  until its whole answer arrived (hours); the agent reads each device in a worker of its own, so the ratio is ~1.
* CPU per poll cycle with 100 CDUs (issue 16). The agent reads a CDU in one request with ``$expand`` (the
  simulator offers it, as real services do). Baseline: a bare loop of requests GETs + JSON decoding of the
  documents the agent needs per CDU (the CDU, its two connectors, two pumps, the filter and the leak detection:
  700 documents; one keep-alive session per CDU, one thread) -- the floor of a poller that walks the links. Also
  given: the ratio against a bare loop of the agent's own 100 expanded requests (what the agent adds on top of
  the HTTP client: typed and checked readings, heat physics, alarm evaluation, status bookkeeping), the agent
  without ``$expand`` against the 700-document loop, and the share of one core at a 10 s poll interval. The
  simulator runs in a separate process, so its CPU is not counted.

Slurm is the in-memory stand-in (bitten.lab.doubles.slurm.MemorySlurm, a TEST DOUBLE): the bench measures the agent,
not scontrol (the real drain on slurmctld is exercised in the cooling_agent Molecule scenario).
"""

from __future__ import annotations

import logging
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from _figures import figure
from bitten.cooling.agent import Agent
from bitten.cooling.config import parse_config
from bitten.lab.doubles.cdu import CduSimulator, ConstantLoad, Plant, serve_cdus
from bitten.lab.doubles.slurm import MemorySlurm
from bitten.lab.httpserve import base_url, in_thread

KINDS = ("leak", "pump_failed", "low_flow", "high_supply_temperature", "stale", "sensor_lost")
ACTIONS = {k: {"drain": k not in ("stale", "sensor_lost")} for k in KINDS}


def config(tmp: Path, url: str, cdus: int, poll: float, events: bool, **settings: Any) -> Any:
    raw = {
        "site": "bench", "port": 0, "poll_interval_s": poll, "stale_after_s": 600, "clear_polls": 2,
        "state_dir": str(tmp), "gpu_power_command": [], **settings,
        "coolants": {"pg25": {"type": "PropyleneGlycol", "additive_percent": 25}},
        "cdus": {f"cdu{i:03d}": {"url": url, "cdu_id": str(i), "coolant": "pg25", "auth": "none", "events": events}
                 for i in range(1, cdus + 1)},
        "loops": {f"loop{i:03d}": {"cdu": f"cdu{i:03d}", "actions": ACTIONS,
                                   "nodes": [{"name": f"n{i:03d}a"}, {"name": f"n{i:03d}b"}]}
                  for i in range(1, cdus + 1)},
    }
    return parse_config(raw)


def bare_get(url: str, n: int = 50) -> float:
    session = requests.Session()
    session.trust_env = False
    session.get(url, timeout=5).json()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        session.get(url, timeout=5).json()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _running(agent: Agent, events: bool) -> threading.Thread:
    runner = threading.Thread(target=agent.run, daemon=True)
    runner.start()
    deadline = time.monotonic() + 20
    while not all(st.last_ok for st in agent.devices.values()) or (
            events and not (agent.listeners and agent.listeners[0].connected.is_set())):
        if time.monotonic() > deadline:
            raise RuntimeError("the agent did not start")
        time.sleep(0.01)
    return runner


def _stop(agent: Agent, runner: threading.Thread) -> None:
    agent.stop.set()
    agent.wake.set()
    runner.join(10)
    agent.close()


def _time_to_drain(sim: CduSimulator, slurm: MemorySlurm, cdu: int, node: str, limit: float) -> float:
    start = time.perf_counter()
    sim.set_fault(cdu, leak=True)
    while not any(c[0] == "drain" and node in c[1] for c in slurm.calls):
        if time.perf_counter() - start > limit:
            raise RuntimeError("no drain")
        time.sleep(0.001)
    return time.perf_counter() - start


def leak_to_drain(events: bool, poll: float, runs: int) -> list[float]:
    sim = CduSimulator([Plant(ConstantLoad(60))])
    server = serve_cdus(sim)
    in_thread(server)
    out = []
    try:
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as tmp:
                slurm = MemorySlurm(["n001a", "n001b"])
                agent = Agent(config(Path(tmp), base_url(server), 1, poll, events), slurm=slurm)
                runner = _running(agent, events)
                time.sleep(poll * 0.37 if not events else 0.05)  # land the leak at an arbitrary point of the cycle
                out.append(_time_to_drain(sim, slurm, 1, "n001a", poll * 3 + 10))
                _stop(agent, runner)
                sim.set_fault(1, leak=False)
    finally:
        server.shutdown()
    return out


def leak_beside_a_drip(drip: bool, poll: float, runs: int) -> list[float]:
    """Leak to drain on loop002 (a healthy CDU) while cdu001 answers one byte every 0.5 s (or not, the baseline)."""
    sim = CduSimulator([Plant(ConstantLoad(60)), Plant(ConstantLoad(60))])
    server = serve_cdus(sim)
    in_thread(server)
    out = []
    try:
        for i in range(runs):
            with tempfile.TemporaryDirectory() as tmp:
                slurm = MemorySlurm(["n001a", "n001b", "n002a", "n002b"])
                agent = Agent(config(Path(tmp), base_url(server), 2, poll, False, read_deadline_s=5.0), slurm=slurm)
                runner = _running(agent, False)
                if drip:
                    sim.set_fault(1, drip_s=0.5)
                time.sleep(poll * (0.2 + 0.6 * i / max(1, runs - 1)))  # the leak lands at several points of a cycle
                out.append(_time_to_drain(sim, slurm, 2, "n002a", poll * 3 + 30))
                sim.set_fault(1, drip_s=None)
                _stop(agent, runner)
                sim.set_fault(2, leak=False)
    finally:
        server.shutdown()
    return out


SERVER = """
import sys, time
from bitten.lab.doubles.cdu import ConstantLoad, CduSimulator, Plant, serve_cdus
sim = CduSimulator([Plant(ConstantLoad(60)) for _ in range(int(sys.argv[1]))])
sim.expand = sys.argv[2] == "expand"
server = serve_cdus(sim)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def documents(url: str, cdus: int) -> list[list[str]]:
    """The documents a poller that walks the links fetches per CDU in a steady-state cycle (collections cached)."""
    base = "/redfish/v1/ThermalEquipment/CDUs/"
    per = ["", "/PrimaryCoolantConnectors/1", "/SecondaryCoolantConnectors/1", "/Pumps/1", "/Pumps/2", "/Filters/1",
           "/LeakDetection"]
    return [[f"{url}{base}{i}{p}" for p in per] for i in range(1, cdus + 1)]


def _cpu(fn: Callable[[], object], cycles: int) -> float:
    """Median CPU seconds of one call over ``cycles`` calls (after one warm-up)."""
    fn()
    samples = []
    for _ in range(cycles):
        start = time.process_time()
        fn()
        samples.append(time.process_time() - start)
    return statistics.median(samples)


def _bare(urls: list[list[str]]) -> Callable[[], None]:
    sessions = [requests.Session() for _ in urls]
    for session in sessions:
        session.trust_env = False

    def run() -> None:
        for session, mine in zip(sessions, urls, strict=True):
            for u in mine:
                session.get(u, timeout=5).json()

    return run


def cpu_per_cycle(cdus: int, cycles: int, expand: bool) -> dict[str, float]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(cdus), "expand" if expand else "walk"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = f"http://127.0.0.1:{proc.stdout.readline().strip()}"
        out: dict[str, float] = {}
        with tempfile.TemporaryDirectory() as tmp:
            agent = Agent(config(Path(tmp), url, cdus, 10.0, False), slurm=MemorySlurm([]))
            try:
                agent.poll_once()  # warm-up: the service root, and without $expand the collections, once
                assert all(st.failures == 0 for st in agent.devices.values())
                requests_before = sum(agent.cdus[n].connection.conn.connector.counters.requests for n in agent.cdus)
                out["agent"] = _cpu(agent.poll_once, cycles)
                made = sum(agent.cdus[n].connection.conn.connector.counters.requests for n in agent.cdus)
                out["requests"] = (made - requests_before) / (cycles + 1)
            finally:
                agent.close()
        out["bare_documents"] = _cpu(_bare(documents(url, cdus)), cycles)
        if expand:
            query = "?$expand=.($levels=3)"
            out["bare_expanded"] = _cpu(_bare([[f"{url}/redfish/v1/ThermalEquipment/CDUs/{i}{query}"]
                                               for i in range(1, cdus + 1)]), cycles)
        return out
    finally:
        proc.terminate()
        proc.wait(5)


def main() -> None:
    logging.basicConfig(level=logging.ERROR)  # the agent's drain log lines are not the bench's output
    sim = CduSimulator([Plant(ConstantLoad(60))])
    server = serve_cdus(sim)
    in_thread(server)
    rtt = bare_get(f"{base_url(server)}/redfish/v1/ThermalEquipment/CDUs/1")
    server.shutdown()
    print(f"baseline: one bare GET of the CDU document: {rtt * 1000:.2f} ms (median of 50)")

    sse = leak_to_drain(events=True, poll=30.0, runs=5)
    med = statistics.median(sse)
    print(f"leak -> drained, server-sent events (poll interval 30 s): median {med * 1000:.1f} ms over {len(sse)} runs "
          f"= {med / rtt:.1f}x a bare GET")
    poll = 2.0
    polled = leak_to_drain(events=False, poll=poll, runs=3)
    med = statistics.median(polled)
    print(f"leak -> drained, polling only every {poll:g} s: median {med:.2f} s over {len(polled)} runs "
          f"= {med / poll:.2f} of the poll interval = {med / rtt:.0f}x a bare GET")

    poll = 1.0
    quiet = leak_beside_a_drip(False, poll, 5)
    dripping = leak_beside_a_drip(True, poll, 5)
    print(f"leak -> drained on a healthy loop while another CDU drips one byte every 0.5 s (poll {poll:g} s, read "
          f"deadline 5 s): median {statistics.median(dripping):.2f} s, max {max(dripping):.2f} s over "
          f"{len(dripping)} runs = {statistics.median(dripping) / statistics.median(quiet):.2f}x the same without "
          f"the dripping CDU ({statistics.median(quiet):.2f} s); budget: one interval and one read")

    cdus, cycles = 100, 5
    figures = cpu_per_cycle(cdus, cycles, expand=True)
    agent, bare, bare_x = figures["agent"], figures["bare_documents"], figures["bare_expanded"]
    print(f"poll cycle with {cdus} CDUs, $expand ({figures['requests']:.0f} requests), median of {cycles} cycles: "
          f"agent CPU {agent * 1000:.0f} ms = {agent / bare:.2f}x a bare requests+JSON loop over the same {cdus * 7} "
          f"documents ({bare * 1000:.0f} ms; target <= 1.0), {agent / bare_x:.2f}x a bare loop of its own "
          f"{cdus} expanded requests ({bare_x * 1000:.0f} ms); at a 10 s interval {agent / 10 * 100:.2f} % of a core "
          f"(target <= 1 %)")
    figure(f"cooling agent CPU per poll cycle / bare requests+JSON loop ({cdus} CDUs, $expand)",
           f"{agent / bare:.2f}x ({agent * 1000:.0f} / {bare * 1000:.0f} ms)", "<= 1.0x", agent / bare <= 1.0)
    figure(f"cooling agent share of a core, {cdus} CDUs at a 10 s interval", f"{agent / 10 * 100:.2f} %", "<= 1 %",
           agent / 10 * 100 <= 1.0)
    walk = cpu_per_cycle(cdus, cycles, expand=False)
    print(f"poll cycle with {cdus} CDUs, without $expand ({walk['requests']:.0f} requests): agent CPU "
          f"{walk['agent'] * 1000:.0f} ms = {walk['agent'] / walk['bare_documents']:.2f}x the bare loop over the same "
          f"documents ({walk['bare_documents'] * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
