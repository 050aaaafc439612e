"""The energy lab layer without the lab: the signal double as a lab service on the gateway, the nvidia-smi double put
on the GPU nodes, the summary's and the drill's reading of what the containers say (podman exec stood in for)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import bitten.lab.layers.energy as energy_lab
from bitten.capabilities import load_site
from bitten.lab.lab import SERVICES, SUMMARIES, Lab

REPO = Path(__file__).resolve().parents[2]


def lab() -> Lab:
    return Lab(REPO / "inventory" / "lab", load_site(REPO / "inventory" / "lab"), Console(record=True))


def test_layer_registers_the_signal_double_and_a_summary() -> None:
    from bitten.lab.layers import LAYERS
    from bitten.lab.layers import load as load_layers

    assert "bitten.lab.layers.energy" in LAYERS
    load_layers()
    service = next(s for s in SERVICES if s.name == "energinet-double")
    the_lab = lab()
    assert service.argv(the_lab)[1:] == ["-m", "bitten.lab.doubles.energinet", "--listen", "10.77.0.1:8447"]
    assert service.port is not None and service.port(the_lab) == 8447
    assert service.prepare is energy_lab.prepare and energy_lab.summary in SUMMARIES


class FakePodman:
    """Stands in for `podman exec`: runs the command here, with the container's files under a directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls: list[tuple[str, list[str]]] = []

    def exec_in(self, container: str, command: list[str], input: str | None = None,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        self.calls.append((container, list(command)))
        base = self.root / container
        base.mkdir(parents=True, exist_ok=True)
        argv = [a.replace("/usr/local/lib", str(base / "lib")).replace("/var/lib", str(base / "var")) for a in command]
        env = {"NVIDIA_SMI_DOUBLE_DIR": str(base / "var" / "nvidia-smi-double"), "PATH": "/usr/bin:/bin"}
        return subprocess.run(argv, input=input, capture_output=True, text=True, env=env, check=False)


def test_prepare_puts_the_recording_double_on_each_gpu_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bitten.lab import podman as pm

    fake = FakePodman(tmp_path)
    monkeypatch.setattr(pm, "exec_in", fake.exec_in)
    the_lab = lab()
    energy_lab.prepare(the_lab)
    nodes = energy_lab._gpu_nodes(the_lab)
    assert nodes == ["lab-gpu01", "lab-gpu02"]
    for host in nodes:
        state = json.loads((tmp_path / the_lab.container_name(host) / "var" / "nvidia-smi-double" / "power.json")
                           .read_text())
        assert state == {"count": 2, "min_w": 200, "max_w": 1000, "limits": {}}
    # what the drill reads back: the double's recorded limits
    monkeypatch.setattr(energy_lab, "SMI_DOUBLE", str(tmp_path / the_lab.container_name(nodes[0]) / "lib" /
                                                      "bitten-lab" / "nvidia-smi"))
    assert energy_lab._limits(the_lab, nodes[0]) == [1000.0, 1000.0]


def test_decisions_table_reads_the_controllers_log(monkeypatch: pytest.MonkeyPatch) -> None:
    from bitten.lab import podman as pm

    entry: dict[str, Any] = {"time": 1800000000.0, "mode": "act", "subject": "caps", "decision": "set GPU power limits",
                             "actuators": [{"target": "lab-gpu01", "reported": [700.0, 700.0], "error": ""}]}

    def fake(container: str, command: list[str], input: str | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
        assert container.endswith("lab-ctl") and command[:2] == ["bitten-energy", "decisions"]
        return subprocess.CompletedProcess(command, 0, json.dumps([entry]), "")

    monkeypatch.setattr(pm, "exec_in", fake)
    console = Console(record=True, width=200)
    console.print(energy_lab.decisions_table(lab()))
    text = console.export_text()
    assert "set GPU power limits" in text and "lab-gpu01: [700.0, 700.0]" in text


def test_the_summary_shows_each_lab_jobs_figures_labelled_simulated(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """sacct on lab-ctl, a copy of the cooling agent's ledger (the plant simulator's meters), the controller's
    signal cache: each job's IT energy, PUE, reused heat and CO2, with their status, under a SIMULATED title."""
    from bitten.cooling.ledger import Ledger
    from bitten.lab import podman as pm

    t0 = 1780000200.0  # 2026-05-28T20:30Z
    ledger = Ledger(tmp_path / "agent.sqlite")
    with ledger.batch():
        for i in range(181):
            for channel, kw in (("it_energy", 10.0), ("facility_energy", 12.0), ("reused_heat", 6.0)):
                ledger.record(channel, "meter", "power", t0 + 60 * i, kw)
    ledger.close()
    cache = {"CO2Emis": {"fetched": t0 + 10800, "points": [[t0 + 300 * i, 200.0] for i in range(37)]}}
    sacct = ("7|researcher|lab|gpu|flexible|lab-gpu01|cpu=1,gres/gpu=2,node=1|2026-05-28T21:00:00|"
             "2026-05-28T22:00:00|COMPLETED|\n")

    def exec_in(container: str, command: list[str], input: str | None = None,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        if "sacct" in command:
            return subprocess.CompletedProcess(command, 0, sacct, "")
        if command[0] == "cat" and command[1].endswith("/signals.json"):
            return subprocess.CompletedProcess(command, 0, json.dumps(cache), "")
        return subprocess.CompletedProcess(command, 0, "", "")  # the ledger's backup in the agent's container

    def podman(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        assert args[0] == "cp" and args[1].endswith(":/tmp/ledger-copy.sqlite")
        Path(args[2]).write_bytes((tmp_path / "agent.sqlite").read_bytes())
        return subprocess.CompletedProcess(list(args), 0, "", "")

    monkeypatch.setattr(pm, "exec_in", exec_in)
    monkeypatch.setattr(pm, "podman", podman)
    console = Console(record=True, width=260)
    console.print(energy_lab.jobs_table(lab()))
    text = console.export_text()
    assert "energy per lab job (SIMULATED" in text and "researcher" in text
    # PUE 12/10 and ERF 6/12 over the job's hour from the copied ledger; CO2 at 200 g/kWh from the signal cache
    assert "1.2 1 (measured)" in text and "200 g/kWh (measured)" in text
    assert "(estimated)" in text  # IT energy: the lab's node power is the profile's estimate
