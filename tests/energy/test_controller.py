"""The energy controller: shadow by default, caps and holds applied and read back in act mode, interlocks that
always win (a cooling alarm during a grid peak, GPU health, an unreachable cooling agent), unknown signals mean no
change, actuator faults reported. Signals from the Energi Data Service TEST DOUBLE; GPU limits through the real
bitten-gpu-power against the nvidia-smi TEST DOUBLE; Slurm in memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import CollectorRegistry

from bitten.core.scontrol import NodeState
from bitten.energy.actuators import GpuCapper
from bitten.energy.config import ControllerConfig, NodeEntry
from bitten.energy.controller import Controller, read_decisions
from bitten.energy.interlocks import parse_alarms
from bitten.energy.metrics import ControllerCollector
from bitten.energy.traces import peak_scenario, to_records
from bitten.lab.doubles.energinet import SignalServer, in_thread, serve
from bitten.site.model import GridSignals, Policy

from .memory_slurm import MemorySlurm

SMI = str(Path(__file__).resolve().parents[1] / "doubles" / "nvidia-smi")
NOW = time.time()
START = NOW - NOW % 300


class Cooling:
    def __init__(self) -> None:
        self.alarms: dict[str, list[str]] | None = {}
        self.reason = ""

    def read(self) -> tuple[dict[str, list[str]] | None, str]:
        return self.alarms, self.reason


@pytest.fixture
def grid() -> Iterator[SignalServer]:
    # CO2 high from 6 h before now until 1 h after: a grid peak now
    srv = serve(to_records(peak_scenario(START - 12 * 3600, before_s=6 * 3600, peak_s=7 * 3600, after_s=86400)))
    in_thread(srv)
    yield srv
    srv.shutdown()


def runner_for(tmp_path: Path, fail: set[str], real: bool = False):  # type: ignore[no-untyped-def]
    """Runs the node-side tool for a node: the real bitten-gpu-power against the nvidia-smi TEST DOUBLE (real), or
    an in-process stand-in that records limits in the same state file and answers in the tool's JSON."""
    def run(argv: list[str], timeout: float) -> tuple[int, str]:
        node, *args = argv
        if node in fail:
            return 255, f"ssh: connect to host {node} port 22: Connection refused"
        state = tmp_path / "gpus" / node
        if not real:
            state.mkdir(parents=True, exist_ok=True)
            path = state / "power.json"
            doc = json.loads(path.read_text()) if path.exists() else {"count": 2, "min_w": 200, "max_w": 1000,
                                                                       "limits": {}}
            if args[0] == "--watts":
                doc["limits"] = {str(i): float(args[1]) for i in range(doc["count"])}
                path.write_text(json.dumps(doc))
            gpus = [{"index": i, "limit_w": float(doc["limits"].get(str(i), 1000.0)), "min_w": 200.0, "max_w": 1000.0,
                     "ok": True, "error": ""} for i in range(doc["count"])]
            return 0, json.dumps({"requested_w": float(args[1]) if args[0] == "--watts" else None, "accepted": True,
                                  "gpus": gpus})
        state.mkdir(parents=True, exist_ok=True)
        if not (state / "power.json").exists():
            (state / "power.json").write_text(json.dumps({"count": 2, "min_w": 200, "max_w": 1000}))
        done = subprocess.run([sys.executable, "-m", "bitten.gpu.power", "--nvidia-smi", SMI, *args],
                              capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "NVIDIA_SMI_DOUBLE_DIR": str(state)})
        return done.returncode, done.stdout
    return run


CAP = {"name": "peak-cap", "when": [{"signal": "co2", "above": 250, "hysteresis": 20}],
       "action": {"type": "gpu_cap", "partition": "gpu", "watts_per_gpu": 700}, "min_hold_s": 0, "min_release_s": 0}
HOLD = {"name": "peak-hold", "when": [{"signal": "co2", "above": 250}], "action": {"type": "hold", "qos": "flex"},
        "min_hold_s": 0, "min_release_s": 0}


def controller(tmp_path: Path, grid: SignalServer, *, mode: str = "shadow", fail: set[str] | None = None,
               policies: tuple[dict[str, object], ...] = (CAP, HOLD), real: bool = False) -> tuple[
                   Controller, MemorySlurm, Cooling]:
    host, port = grid.server_address[:2]
    cfg = ControllerConfig(
        site="t", mode=mode, state_dir=str(tmp_path / "state"), gpu_power_command=("{node}", "--watts", "{watts}"),
        actuator_deadline_s=1.0, grid=GridSignals(url=f"http://{host}:{port}", timeout_s=2, deadline_s=4),
        policies=tuple(Policy.model_validate(p) for p in policies), flexible_qos=("flex",),
        partitions={"gpu": tuple(NodeEntry(name=f"gpu0{i}", gpus=2, min_w=200, max_w=1000, floor_w=400,
                                           loop="loop-a" if i < 3 else "loop-b") for i in (1, 2, 3))})
    slurm = MemorySlurm(node_states={f"gpu0{i}": NodeState(f"gpu0{i}", "MIXED") for i in (1, 2, 3)},
                        jobs={"flex": {"101": "Priority", "102": "Resources"}})
    cooling = Cooling()
    capper = GpuCapper(cfg.gpu_power_command, deadline_s=1.0, runner=runner_for(tmp_path, fail or set(), real),
                       sleep=lambda s: None)
    ctl = Controller(cfg, slurm=slurm, capper=capper, cooling=cooling, sleep=lambda s: None)  # type: ignore[arg-type]
    return ctl, slurm, cooling


def limits(tmp_path: Path, node: str) -> dict[str, float]:
    """The limits written to a node's GPUs (none written: {})."""
    path = tmp_path / "gpus" / node / "power.json"
    return json.loads(path.read_text()).get("limits", {}) if path.exists() else {}


def test_shadow_by_default_decides_and_acts_on_nothing(tmp_path: Path, grid: SignalServer) -> None:
    ctl, slurm, _ = controller(tmp_path, grid)
    cyc = ctl.cycle()
    assert cyc.mode == "shadow" and cyc.decisions["peak-cap"].active and cyc.cap_w == {"gpu": 700}
    ctl.cycle()
    assert all(limits(tmp_path, n) == {} for n in ("gpu01", "gpu02", "gpu03"))  # read, never written
    assert slurm.calls == []
    log = read_decisions(ctl.cfg.decisions_path, 50)
    switched = next(e for e in log if e["subject"] == "peak-cap")
    assert switched["decision"] == "switched on" and "co2 > 250" in switched["rule"]
    assert switched["inputs"]["co2"]["status"] == "ok" and switched["inputs"]["co2"]["value"] == 420
    assert "cap 6 GPUs of partition gpu to 700 W" in switched["expected"]
    shadow = next(e for e in log if e["subject"] == "caps")
    assert shadow["decision"] == "shadow: would set GPU limits"
    assert [a["error"] for a in shadow["actuators"]] == ["shadow: not applied"] * 3
    ctl.close()


def test_act_caps_and_holds_with_read_back_then_releases(tmp_path: Path, grid: SignalServer) -> None:
    ctl, slurm, _ = controller(tmp_path, grid, mode="act", real=True)
    ctl.cycle()  # learns the GPUs' limits
    cyc = ctl.cycle()
    assert {r.target: r.reported for r in cyc.reports if r.actuator == "gpu_power_limit"} == {
        "gpu01": [700.0, 700.0], "gpu02": [700.0, 700.0], "gpu03": [700.0, 700.0]}
    assert limits(tmp_path, "gpu01") == {"0": 700.0, "1": 700.0}
    assert ("hold", ("101", "102")) in slurm.calls and ctl.holder.held == {"flex": {"101", "102"}}
    # the peak passes: the signal double serves a quiet grid from now on
    host, port = grid.server_address[:2]
    requests.post(f"http://{host}:{port}/testdouble/peak", json={"before_s": 86400, "peak_s": 300, "low": 100},
                  timeout=5)
    ctl.grid.refresh(force=True)  # type: ignore[union-attr]
    ctl.cycle()
    assert limits(tmp_path, "gpu02") == {"0": 1000.0, "1": 1000.0}
    assert ("release", ("101", "102")) in slurm.calls and ctl.holder.held == {"flex": set()}
    text = generate_latest(_registry(ctl)).decode()
    assert 'bitten_energy_controller_mode{mode="act"} 1.0' in text
    assert 'bitten_energy_gpu_power_limit_watts{node="gpu01"} 1000.0' in text
    assert 'bitten_energy_actions_total{actuator="gpu_power_limit",result="ok"} 6.0' in text
    assert 'bitten_energy_policy_changes_total{policy="peak-cap"} 2.0' in text
    ctl.close()


def test_a_cooling_alarm_during_a_grid_peak_wins(tmp_path: Path, grid: SignalServer) -> None:
    ctl, slurm, cooling = controller(tmp_path, grid, mode="act")
    cooling.alarms = {"loop-a": ["high_supply_temperature"]}
    ctl.cycle()
    ctl.cycle()
    assert limits(tmp_path, "gpu01") == {} and limits(tmp_path, "gpu02") == {}  # loop-a: the agent's nodes
    assert limits(tmp_path, "gpu03") == {"0": 700.0, "1": 700.0}
    log = read_decisions(ctl.cfg.decisions_path, 50)
    blocked = [e for e in log if e["subject"] == "cap:gpu01"]
    assert blocked and "cooling alarm on loop loop-a: high_supply_temperature" in blocked[0]["rule"]
    # the peak passes while the alarm is still active: held jobs stay held until cooling is clear
    host, port = grid.server_address[:2]
    requests.post(f"http://{host}:{port}/testdouble/peak", json={"before_s": 86400, "peak_s": 300}, timeout=5)
    ctl.grid.refresh(force=True)  # type: ignore[union-attr]
    ctl.cycle()
    assert not any(c[0] == "release" for c in slurm.calls)
    assert any(e["decision"] == "interlock: release waits" for e in read_decisions(ctl.cfg.decisions_path, 50))
    cooling.alarms = {}
    ctl.cycle()
    assert ("release", ("101", "102")) in slurm.calls
    ctl.close()


def test_an_unknown_cooling_state_changes_nothing(tmp_path: Path, grid: SignalServer) -> None:
    ctl, _, cooling = controller(tmp_path, grid, mode="act")
    cooling.alarms, cooling.reason = None, "cooling agent http://x:9105/metrics: ConnectionError"
    ctl.cycle()
    ctl.cycle()
    assert all(limits(tmp_path, n) == {} for n in ("gpu01", "gpu02", "gpu03"))
    text = generate_latest(_registry(ctl)).decode()
    assert 'bitten_energy_interlock_active{kind="cooling_unknown",target="cooling agent"} 1.0' in text
    ctl.close()


def test_gpu_health_wins(tmp_path: Path, grid: SignalServer) -> None:
    ctl, slurm, _ = controller(tmp_path, grid, mode="act")
    slurm.node_states["gpu03"] = NodeState("gpu03", "MIXED+DRAIN", "gpu-health: XID 79 on GPU 1")
    ctl.cycle()
    ctl.cycle()
    assert limits(tmp_path, "gpu03") == {} and limits(tmp_path, "gpu01") == {"0": 700.0, "1": 700.0}
    assert any("gpu-health: XID 79" in e["rule"] for e in read_decisions(ctl.cfg.decisions_path, 50))
    ctl.close()


def test_an_unknown_signal_means_no_change(tmp_path: Path, grid: SignalServer) -> None:
    ctl, _, _ = controller(tmp_path, grid, mode="act")
    ctl.cycle()
    ctl.cycle()
    assert ctl.machines["peak-cap"].active
    host, port = grid.server_address[:2]
    requests.post(f"http://{host}:{port}/testdouble/fault", json={"mode": "down"}, timeout=5)
    ctl.grid.cache.points.clear()  # type: ignore[union-attr]  # nothing cached either
    ctl.grid.refresh(force=True)  # type: ignore[union-attr]
    cyc = ctl.cycle()
    assert cyc.readings["co2"].status == "down" and ctl.machines["peak-cap"].active  # kept, not guessed
    assert limits(tmp_path, "gpu01") == {"0": 700.0, "1": 700.0}
    entry = next(e for e in read_decisions(ctl.cfg.decisions_path, 50)
                 if e["decision"] == "no change: unknown signal")
    assert "co2 > 250" in entry["rule"] and entry["inputs"]["co2"]["status"] == "down"
    assert "HTTP 503" in entry["inputs"]["co2"]["reason"]
    ctl.close()


def test_an_actuator_that_fails_is_retried_and_reported(tmp_path: Path, grid: SignalServer) -> None:
    ctl, _, _ = controller(tmp_path, grid, mode="act", fail={"gpu02"})
    cyc = ctl.cycle()
    failed = [r for r in cyc.reports if r.target == "gpu02"]
    assert failed and not failed[0].ok and "Connection refused" in failed[0].error and failed[0].attempts >= 2
    assert ctl.limits.get("gpu02") is None  # unknown, never assumed
    text = generate_latest(_registry(ctl)).decode()
    assert 'bitten_energy_actions_total{actuator="gpu_power_limit",result="failed"}' in text
    ctl.close()


def test_mode_override_and_restart(tmp_path: Path, grid: SignalServer) -> None:
    ctl, _, _ = controller(tmp_path, grid)
    ctl.cfg.mode_path.write_text("act\n")
    ctl.cycle()
    ctl.cycle()
    assert ctl.mode() == "act" and ctl.holder.held == {"flex": {"101", "102"}}
    ctl.close()
    again, _, _ = controller(tmp_path, grid)  # a restart remembers which jobs it held and the policies' states
    assert again.holder.held == {"flex": {"101", "102"}} and again.machines["peak-cap"].active
    again.close()


def test_cooling_alarms_from_the_agents_metrics() -> None:
    registry = CollectorRegistry()

    class Fake:
        def collect(self):  # type: ignore[no-untyped-def]
            fam = GaugeMetricFamily("bitten_cooling_alarm_active", "x", labels=["loop", "kind"])
            fam.add_metric(["dlc-a", "leak"], 1.0)
            fam.add_metric(["dlc-b", "stale"], 0.0)
            yield fam

    registry.register(Fake())
    assert parse_alarms(generate_latest(registry).decode()) == {"dlc-a": ["leak"]}
    with pytest.raises(ValueError, match="not the cooling agent's metrics"):
        parse_alarms("# HELP x y\n# TYPE x gauge\nx 1\n")


def _registry(ctl: Controller) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(ControllerCollector(ctl))
    return registry


def test_the_controllers_own_actuators_stop_retrying_when_it_stops(tmp_path: Path, grid: SignalServer) -> None:
    """The service's SIGTERM handler sets ``stop``: the actuators the controller builds itself (no sleep given, as
    the service runs it) wait on that event between attempts, so a retry under the actuator deadline ends at once
    rather than outliving systemd's TimeoutStopSec and being killed mid-action."""
    ctl, _, _ = controller(tmp_path, grid)
    cfg = ctl.cfg.model_copy(update={"actuator_deadline_s": 3600.0})
    service = Controller(cfg, slurm=MemorySlurm(), cooling=Cooling())  # type: ignore[arg-type]
    calls: list[list[str]] = []

    def refused(argv: list[str], timeout: float) -> tuple[int, str]:
        calls.append(argv)
        service.stop.set()
        return 255, "ssh: connect to host gpu01 port 22: Connection refused"

    service.capper.runner = refused
    r = service.capper.apply("gpu01", None)
    assert not r.ok and len(calls) == 1 and "stopping" in r.error
    service.close()
