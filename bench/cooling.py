"""Cooling bench: time from a leak appearing to the nodes drained, and CPU time per poll cycle with 100 CDUs.

Both as ratios against baselines measured in the same run:

* Leak to drain. Baseline: one bare HTTP GET of the CDU document from the same simulator (the least time in which
  anything can learn about the leak over Redfish). With the EventService's server-sent events the agent is woken
  by the event and confirms it with a poll; without them (polling only) the latency is bounded by the poll
  interval, so that figure is also given as a fraction of the interval.
* CPU per poll cycle with 100 CDUs. Baseline: a bare loop of requests GETs + JSON decoding of exactly the documents
  the agent fetches in a cycle (one keep-alive session per CDU, one thread). That is the floor for any Redfish
  poller in Python; the ratio is what the agent adds on top (typed readings, heat physics, alarm evaluation,
  metrics bookkeeping, its thread pool). The simulator runs in a separate process, so its CPU is not counted.

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
from pathlib import Path
from typing import Any

import requests

from bitten.cooling.agent import Agent
from bitten.cooling.config import parse_config
from bitten.lab.doubles.cdu import CduSimulator, ConstantLoad, Plant, serve_cdus
from bitten.lab.doubles.slurm import MemorySlurm
from bitten.lab.httpserve import base_url, in_thread

ACTIONS = {k: {"drain": k != "stale"} for k in ("leak", "pump_failed", "low_flow", "high_supply_temperature", "stale")}


def config(tmp: Path, url: str, cdus: int, poll: float, events: bool) -> Any:
    raw = {
        "site": "bench", "port": 0, "poll_interval_s": poll, "stale_after_s": 600, "clear_polls": 2,
        "state_dir": str(tmp), "gpu_power_command": [],
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
                runner = threading.Thread(target=agent.run, daemon=True)
                runner.start()
                deadline = time.monotonic() + 10
                while agent.cycles < 1 or (events and not (agent.listeners and agent.listeners[0].connected.is_set())):
                    if time.monotonic() > deadline:
                        raise RuntimeError("the agent did not start")
                    time.sleep(0.01)
                time.sleep(poll * 0.37 if not events else 0.05)  # land the leak at an arbitrary point of the cycle
                start = time.perf_counter()
                sim.set_fault(1, leak=True)
                while not slurm.calls:
                    if time.perf_counter() - start > poll * 3 + 10:
                        raise RuntimeError("no drain")
                    time.sleep(0.001)
                out.append(time.perf_counter() - start)
                agent.stop.set()
                agent.wake.set()
                runner.join(5)
                agent.close()
                sim.set_fault(1, leak=False)
    finally:
        server.shutdown()
    return out


SERVER = """
import sys, time
from bitten.lab.doubles.cdu import ConstantLoad, CduSimulator, Plant, serve_cdus
sim = CduSimulator([Plant(ConstantLoad(60)) for _ in range(int(sys.argv[1]))])
server = serve_cdus(sim)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def documents(url: str, cdus: int) -> list[list[str]]:
    """The documents the agent fetches per CDU in a steady-state cycle (collections are cached)."""
    base = "/redfish/v1/ThermalEquipment/CDUs/"
    per = ["", "/PrimaryCoolantConnectors/1", "/SecondaryCoolantConnectors/1", "/Pumps/1", "/Pumps/2", "/Filters/1",
           "/LeakDetection"]
    return [[f"{url}{base}{i}{p}" for p in per] for i in range(1, cdus + 1)]


def cpu_per_cycle(cdus: int, cycles: int) -> tuple[float, float, float, float, int]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(cdus)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = f"http://127.0.0.1:{proc.stdout.readline().strip()}"
        with tempfile.TemporaryDirectory() as tmp:
            agent = Agent(config(Path(tmp), url, cdus, 10.0, False), slurm=MemorySlurm([]))
            try:
                agent.poll_once()  # warm-up: lists the collections once
                assert all(st.failures == 0 for st in agent.devices.values())
                cpu0, wall0 = time.process_time(), time.perf_counter()
                for _ in range(cycles):
                    agent.poll_once()
                agent_cpu = (time.process_time() - cpu0) / cycles
                agent_wall = (time.perf_counter() - wall0) / cycles
            finally:
                agent.close()
        docs = documents(url, cdus)
        sessions = [requests.Session() for _ in docs]
        for session, urls in zip(sessions, docs, strict=True):
            session.trust_env = False
            for u in urls:
                session.get(u, timeout=5).json()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(cycles):
            for session, urls in zip(sessions, docs, strict=True):
                for u in urls:
                    session.get(u, timeout=5).json()
        base_cpu = (time.process_time() - cpu0) / cycles
        base_wall = (time.perf_counter() - wall0) / cycles
        return agent_cpu, base_cpu, agent_wall, base_wall, sum(len(d) for d in docs)
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

    cdus, cycles = 100, 5
    agent_cpu, base_cpu, agent_wall, base_wall, docs = cpu_per_cycle(cdus, cycles)
    print(f"poll cycle with {cdus} CDUs ({docs} documents), mean of {cycles} cycles: agent CPU "
          f"{agent_cpu * 1000:.0f} ms "
          f"vs bare GET+JSON loop {base_cpu * 1000:.0f} ms = {agent_cpu / base_cpu:.2f}x; wall {agent_wall:.2f} s "
          f"(16 threads) vs {base_wall:.2f} s (1 thread)")


if __name__ == "__main__":
    main()
