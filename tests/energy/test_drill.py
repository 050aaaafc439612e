"""`bitten energy drill grid-peak` without the lab: the drill's own code against a real controller (rendered from
the lab inventory, run in a thread), the Energi Data Service TEST DOUBLE, the real bitten-gpu-power on the
nvidia-smi TEST DOUBLE per GPU node, and an in-memory Slurm (TEST DOUBLE) behind sbatch/squeue/scancel. `podman
exec` is stood in for by a dispatcher that runs each command where the lab would: `bitten-energy` is the
controller's own CLI on its configuration, the nvidia-smi double runs with the node's state directory. The lab
itself runs the drill under `make lab` only."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import yaml
from rich.console import Console
from typer.testing import CliRunner

import bitten.lab.layers.energy as energy_lab
from bitten.capabilities import load_site, render_file
from bitten.core.scontrol import NodeState
from bitten.energy.actuators import GpuCapper
from bitten.energy.cli import app as controller_cli
from bitten.energy.config import parse_config
from bitten.energy.controller import Controller
from bitten.lab.doubles.energinet import SignalServer, in_thread, serve
from bitten.lab.lab import Lab

from .memory_slurm import MemorySlurm
from .test_lab_layer import FakePodman

REPO = Path(__file__).resolve().parents[2]
SMI = REPO / "tests" / "doubles" / "nvidia-smi"


class Cooling:
    """The cooling agent's alarms: none (the interlock tests are in test_controller.py)."""

    def read(self) -> tuple[dict[str, list[str]] | None, str]:
        return {}, ""


@dataclass
class Cluster:
    """sbatch, squeue and scancel over the controller's in-memory Slurm: a job runs while a GPU node is free (one
    job per node, as the drill's jobs take every GPU of a node), else it pends with reason Resources."""

    slurm: MemorySlurm
    nodes: int
    running: list[str] = field(default_factory=list)
    submitted: list[tuple[str, list[str]]] = field(default_factory=list)
    refuse: str = ""
    next_id: int = 100

    def sbatch(self, user: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
        if self.refuse:
            return subprocess.CompletedProcess(argv, 1, "", self.refuse)
        self.submitted.append((user, argv))
        self.next_id += 1
        job = str(self.next_id)
        qos = next(a.split("=", 1)[1] for a in argv if a.startswith("--qos="))
        if len(self.running) < self.nodes:
            self.running.append(job)
        else:
            self.slurm.jobs.setdefault(qos, {})[job] = "Resources"
        return subprocess.CompletedProcess(argv, 0, f"{job}\n", "")

    def squeue(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        wanted = next(a.split("=", 1)[1] for a in argv if a.startswith("--jobs=")).split(",")
        lines = [f"{j}|RUNNING|None" for j in self.running if j in wanted]
        lines += [f"{j}|PENDING|{reason}" for jobs in self.slurm.jobs.values() for j, reason in jobs.items()
                  if j in wanted]
        return subprocess.CompletedProcess(argv, 0, "\n".join(lines) + "\n", "")

    def scancel(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        for job in argv[1:]:
            if job in self.running:
                self.running.remove(job)
            for jobs in self.slurm.jobs.values():
                jobs.pop(job, None)
        return subprocess.CompletedProcess(argv, 0, "", "")


@dataclass
class Drill:
    lab: Lab
    cluster: Cluster
    grid: SignalServer
    controller: Controller
    config: Path
    calls: list[tuple[str, list[str]]]
    #: commands the stand-in refuses to run (to show the drill failing)
    ignore: set[str] = field(default_factory=set)


def runner(files: FakePodman):  # type: ignore[no-untyped-def]
    """The controller's GPU command: ssh NODE sudo -n /usr/local/sbin/bitten-gpu-power ARGS; here the real tool
    (bitten.gpu.power) on the node's nvidia-smi double, in the state directory the drill reads back."""
    def run(argv: list[str], timeout: float) -> tuple[int, str]:
        node = argv[argv.index("BatchMode=yes") + 1]
        args = argv[argv.index("/usr/local/sbin/bitten-gpu-power") + 1:]
        state = files.root / node / "var" / "nvidia-smi-double"
        done = subprocess.run([sys.executable, "-m", "bitten.gpu.power", "--nvidia-smi", str(SMI), *args],
                              capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "NVIDIA_SMI_DOUBLE_DIR": str(state)})
        return done.returncode, done.stdout
    return run


@pytest.fixture
def drill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Drill]:
    """The lab inventory with its grid signal on a local double and policies without minimum hold times; the
    controller it renders for lab-ctl (state in tmp_path), running; podman exec dispatched."""
    grid = serve({})
    in_thread(grid)
    host, port = grid.server_address[:2]
    # a quiet grid from now on (the double's peak far ahead)
    requests.post(f"http://{host}:{port}/testdouble/peak", json={"before_s": 86400, "peak_s": 300, "low": 110},
                  timeout=5).raise_for_status()
    inv = tmp_path / "lab"
    shutil.copytree(REPO / "inventory" / "lab", inv)
    path = inv / "group_vars" / "all" / "energy.yml"
    data = yaml.safe_load(path.read_text())
    data["bitten_energy"]["signals"]["grid"]["url"] = f"http://{host}:{port}"
    for policy in data["bitten_energy"]["policies"]:
        policy.update(min_hold_s=0, min_release_s=0)
    path.write_text(yaml.safe_dump(data))
    site = load_site(inv)
    raw = yaml.safe_load(render_file(site, "/etc/bitten/energy/controller.yaml", "lab-ctl"))
    raw.update(state_dir=str(tmp_path / "state"), port=0, interval_s=0.2)
    raw.pop("node_power", None)  # the lab's BMCs are not here: no node power (attribution is tested elsewhere)
    config = tmp_path / "controller.yaml"
    config.write_text(yaml.safe_dump(raw))
    cfg = parse_config(raw)
    assert cfg.grid is not None
    # the validated file says refresh_s >= 10; the controller in this test refreshes faster (same code path)
    cfg = cfg.model_copy(update={"grid": cfg.grid.model_copy(update={"refresh_s": 0.2})})
    console = Console(record=True, width=220)
    lab = Lab(inv, site, console)
    files = FakePodman(tmp_path / "containers")
    gpu_nodes = energy_lab._gpu_nodes(lab)
    slurm = MemorySlurm(node_states={n: NodeState(n, "IDLE") for part in cfg.partitions.values() for n in
                                     [e.name for e in part]})
    cluster = Cluster(slurm, nodes=len(gpu_nodes))
    capper = GpuCapper(cfg.gpu_power_command, deadline_s=2.0, runner=runner(files), sleep=lambda s: None)
    ctl = Controller(cfg, slurm=slurm, capper=capper, cooling=Cooling())  # type: ignore[arg-type]
    calls: list[tuple[str, list[str]]] = []
    state = Drill(lab, cluster, grid, ctl, config, calls)

    def exec_in(container: str, command: list[str], input: str | None = None,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        calls.append((container, list(command)))
        if command[0] in state.ignore:
            return subprocess.CompletedProcess(command, 0, "", "")
        if command[:2] == ["runuser", "-u"] and command[4] == "sbatch":
            assert container == "lab-login", "the drill submits on the login node, as a user would"
            return cluster.sbatch(command[2], command[4:])
        if command[0] in ("squeue", "scancel"):
            assert container == "lab-ctl"
            return getattr(cluster, command[0])(command)
        if command[0] == "bitten-energy":
            assert container == "lab-ctl"
            result = CliRunner().invoke(controller_cli, [*command[1:], "--config", str(config)])
            assert result.exit_code == 0, result.output
            return subprocess.CompletedProcess(command, 0, result.stdout, "")
        assert container in gpu_nodes, (container, command)
        return files.exec_in(container, command, input=input, check=check)

    monkeypatch.setattr("bitten.lab.podman.exec_in", exec_in)
    energy_lab.prepare(lab)  # the nvidia-smi double on each GPU node, as make lab puts it
    thread = threading.Thread(target=ctl.run, daemon=True)
    thread.start()
    yield state
    ctl.stop.set()
    thread.join(10)
    ctl.close()
    grid.shutdown()


def test_plan_from_the_lab_inventory() -> None:
    site = load_site(REPO / "inventory" / "lab")
    plan = energy_lab.drill_plan(site)
    assert isinstance(plan, energy_lab.DrillPlan)
    assert (plan.controller, plan.slurm_host, plan.submit_host, plan.user) == ("lab-ctl", "lab-ctl", "lab-login",
                                                                                "researcher")
    # the lab's policy caps to 700 W (above the floor of 400 W, within the B200 stand-ins' 200-1000 W)
    assert plan.capped_w == {"lab-gpu01": 700.0, "lab-gpu02": 700.0}
    assert plan.max_w == {"lab-gpu01": 1000.0, "lab-gpu02": 1000.0}
    assert plan.policies == ("grid-peak-cap", "grid-peak-hold") and plan.qos == "flexible" and plan.jobs == 4
    # root's own association has QoS normal only, which partition gpu refuses: the drill submits as a user of an
    # account that allows the flexible QoS, with that account
    assert {"--partition=gpu", "--account=lab", "--qos=flexible", "--gres=gpu:2"} <= set(plan.sbatch)


def test_a_site_without_the_policies_cannot_run_the_drill(tmp_path: Path) -> None:
    inv = tmp_path / "lab"
    shutil.copytree(REPO / "inventory" / "lab", inv)
    path = inv / "group_vars" / "all" / "energy.yml"
    data = yaml.safe_load(path.read_text())
    data["bitten_energy"]["policies"] = [p for p in data["bitten_energy"]["policies"] if p["action"]["type"] != "hold"]
    path.write_text(yaml.safe_dump(data))
    lab = Lab(inv, load_site(inv), Console(record=True, width=200))
    assert energy_lab.grid_peak(lab, peak_s=1, timeout=1) == 2
    assert "the drill needs a gpu_cap and a hold policy" in lab.console.export_text()


def test_the_drill_caps_and_holds_then_undoes_both(drill: Drill) -> None:
    assert energy_lab.grid_peak(drill.lab, peak_s=1.0, timeout=30, poll_s=0.2) == 0
    text = drill.lab.console.export_text()
    assert "during the peak: capped and held after" in text and "after the peak: lifted and released after" in text
    assert re.search(r"lab-gpu01 GPU power limits \(nvidia-smi double\) +│ 700 W, 700 W", text)
    assert re.search(r"lab-gpu02 GPU power limits \(nvidia-smi double\) +│ 1000 W, 1000 W", text)
    assert "PENDING|JobHeldAdmin" in text and "the drill saw caps and holds in the peak and both undone" in text
    # four jobs as researcher with the lab's account and the flexible QoS; two ran, two were held and released
    assert [user for user, _ in drill.cluster.submitted] == ["researcher"] * 4
    assert ("hold", ("103", "104")) in drill.controller.slurm.calls
    assert ("release", ("103", "104")) in drill.controller.slurm.calls
    # the controller switched to act and back to the site's mode (shadow in the lab); the jobs are cancelled
    modes = [c[1][2] for c in drill.calls if c[1][:2] == ["bitten-energy", "mode"]]
    assert modes == ["act", "site"] and not drill.controller.cfg.mode_path.exists()
    assert not drill.cluster.running and not any(drill.cluster.slurm.jobs.values())
    # the decisions the controller recorded, in the drill's last table and in its log
    assert "set GPU power limits" in text and "held pending jobs" in text and "released held jobs" in text


def test_a_controller_that_does_not_act_fails_the_drill(drill: Drill) -> None:
    drill.ignore.add("bitten-energy")  # `bitten-energy mode act` never arrives: the controller stays in shadow
    assert energy_lab.grid_peak(drill.lab, peak_s=1.0, timeout=2, poll_s=0.2) == 1
    text = drill.lab.console.export_text()
    assert "during the peak: NOT capped and held within 2 s" in text
    assert "the drill did not see everything" in text
    assert not drill.cluster.running and not any(drill.cluster.slurm.jobs.values())  # cancelled all the same


def test_a_refused_sbatch_stops_the_drill_before_the_peak(drill: Drill) -> None:
    drill.cluster.refuse = "sbatch: error: Batch job submission failed: Invalid qos specification"
    assert energy_lab.grid_peak(drill.lab, peak_s=1.0, timeout=2, poll_s=0.2) == 1
    text = drill.lab.console.export_text()
    assert "sbatch as researcher on lab-login failed" in text and "Invalid qos specification" in text
    assert not any(c[1][:3] == ["bitten-energy", "mode", "act"] for c in drill.calls)
