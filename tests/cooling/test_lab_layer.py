"""The cooling lab layer without the lab: the plant service's command, the summary read from a live agent's
metrics, and the leak drill against the simulator and an agent (Slurm's answers come from the agent's in-memory
cluster, standing in for `podman exec lab-ctl scontrol` -- the lab itself runs only under `make lab`)."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, start_http_server
from rich.console import Console

import bitten.lab.layers.cooling as cooling_lab
from bitten.capabilities import load_site, render_file
from bitten.cooling.agent import Agent
from bitten.cooling.config import parse_config
from bitten.cooling.metrics import AgentCollector
from bitten.core.pki import server_tls
from bitten.lab.doubles.cdu import CduSimulator, ConstantLoad, Plant, serve_cdus
from bitten.lab.doubles.slurm import MemorySlurm
from bitten.lab.httpserve import in_thread
from bitten.lab.lab import SERVICES, SUMMARIES, Lab

REPO = Path(__file__).resolve().parents[2]


def test_layer_registers_the_plant_and_a_summary() -> None:
    from bitten.lab.layers import LAYERS
    from bitten.lab.layers import load as load_layers

    assert "bitten.lab.layers.cooling" in LAYERS
    load_layers()
    service = next(s for s in SERVICES if s.name == "cooling-plant")
    assert cooling_lab.summary in SUMMARIES
    lab = Lab(REPO / "inventory" / "lab", load_site(REPO / "inventory" / "lab"))
    argv = service.argv(lab)
    assert argv[1:4] == ["cooling", "simulate", "--inventory"]
    assert argv[argv.index("--host") + 1] == "10.77.0.1" and argv[argv.index("--load") + 1] == "slurm:lab-ctl"
    assert service.port is not None and service.port(lab) == 8444


@pytest.fixture
def drill(tmp_path: Path) -> Any:
    """A lab-shaped inventory whose CDU is a local simulator, and an agent on it with an in-memory Slurm."""
    root = tmp_path / "repo"
    inv = root / "inventory" / "lab"
    shutil.copytree(REPO / "inventory" / "lab", inv)
    tls = root / ".lab" / "cooling"
    server_tls(tls, ["127.0.0.1"])
    sim = CduSimulator([Plant(ConstantLoad(30.0))])
    server = serve_cdus(sim, certfile=str(tls / "server.pem"), keyfile=str(tls / "server.key"))
    in_thread(server)
    path = inv / "group_vars" / "all" / "cooling.yml"
    data = yaml.safe_load(path.read_text())
    cdu = data["bitten_cooling"]["cdus"]["lab-cdu"]
    cdu.update(url=f"https://127.0.0.1:{server.server_address[1]}", ca_file=str(tls / "ca.pem"))
    data["bitten_cooling"]["agent"].update(poll_interval_s=0.2, listen="127.0.0.1")
    data["bitten_cooling"]["heat_meters"] = data["bitten_cooling"]["meters"] = {}
    data["bitten_cooling"]["ledger"] = {}
    del data["bitten_cooling"]["loops"]["lab-loop"]["heat_meter"]
    path.write_text(yaml.safe_dump(data))
    site = load_site(inv)
    cfg = parse_config(yaml.safe_load(render_file(site, "/etc/bitten/cooling/agent.yaml", "lab-ctl")))
    cfg = cfg.model_copy(update={"state_dir": str(tmp_path / "state"), "port": 0})
    slurm = MemorySlurm(site.loop_nodes("lab-loop"))
    agent = Agent(cfg, slurm=slurm)
    runner = threading.Thread(target=agent.run, daemon=True)
    runner.start()
    yield Lab(inv, site, Console(record=True, width=200)), agent, slurm, sim
    agent.stop.set()
    agent.wake.set()
    runner.join(5)
    agent.close()
    server.shutdown()


def test_leak_drill_shows_the_nodes_drained(drill: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    lab, _agent, slurm, sim = drill

    def fake_exec(container: str, argv: list[str], check: bool = True, **_: Any) -> Any:
        assert container == "lab-ctl" and argv[:4] == ["scontrol", "show", "node", "-o"]
        lines = [f"NodeName={n.name} State={n.state} Reason={n.reason or '(null)'}"
                 for n in slurm.node_states(argv[4].split(",")).values()]
        return subprocess.CompletedProcess(argv, 0, "\n".join(lines) + "\n", "")

    monkeypatch.setattr("bitten.lab.podman.exec_in", fake_exec)
    assert cooling_lab.leak(lab, "lab-loop", clear=False, timeout=20) == 0
    assert sim.plants[0].faults.leak
    text = lab.console.export_text()
    assert "lab-gpu01" in text and "DRAIN" in text and "bitten-cooling: leak on lab-cdu" in text
    assert cooling_lab.leak(lab, "lab-loop", clear=True, timeout=5) == 0
    assert not sim.plants[0].faults.leak and "resume" in lab.console.export_text()
    assert cooling_lab.leak(lab, "no-such-loop", clear=False, timeout=1) == 2


def test_summary_reads_the_agents_metrics(drill: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    lab, agent, _slurm, _sim = drill
    registry = CollectorRegistry()
    registry.register(AgentCollector(agent.status))
    server, _thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        deadline = time.time() + 5
        while agent.reads < 1 and time.time() < deadline:
            time.sleep(0.05)
        monkeypatch.setattr(cooling_lab, "metrics_url", lambda site: f"http://127.0.0.1:{server.server_port}/metrics")
        console = Console(record=True, width=200)
        console.print(cooling_lab.summary(lab))
        text = console.export_text()
        assert "heat recovered to district heating" in text and "ERF" in text
        assert "heat now, lab-cdu secondary (computed)" in text and "active alarms" in text
    finally:
        server.shutdown()
    monkeypatch.setattr(cooling_lab, "metrics_url", lambda site: "http://127.0.0.1:9/metrics")
    assert "not answering" in str(cooling_lab.summary(lab))
