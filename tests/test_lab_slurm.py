"""The lab's Slurm summary: which jobs it runs for a site, and how it reports them."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from bitten.capabilities import load_site
from bitten.lab.lab import SUMMARIES, Lab
from bitten.lab.layers.slurm import probes, summary

ROOT = Path(__file__).resolve().parents[1]


def _lab() -> Lab:
    return Lab(ROOT / "inventory" / "lab", load_site([ROOT / "inventory" / "lab"]), Console(record=True))


def test_probes_use_a_qos_each_partition_allows_through_roots_account() -> None:
    site = load_site([ROOT / "inventory" / "lab"])
    found = {p.title: p.argv for p in probes(site)}
    assert found["sinfo"] == ["sinfo"]
    srun = found["srun on all 2 nodes of partition gpu"]
    assert srun[:3] == ["timeout", "90", "srun"]
    assert {"--nodes=2", "--partition=gpu", "--account=lab", "--qos=gpu"} <= set(srun)
    batch = found["batch job with one GPU, and its accounting record"][-1]
    assert "--gres=gpu:1" in batch and "sacct" in batch
    assert {"--partition=cpu", "--qos=normal"} <= set(found["srun in partition cpu"])


def test_summary_runs_every_probe_on_the_controller_and_reports_failures() -> None:
    lab = _lab()
    calls: list[tuple[str, list[str]]] = []

    def run(container: str, argv: list[str]) -> tuple[int, str]:
        calls.append((container, argv))
        return (1, "srun: error: Unable to allocate resources") if "srun" in argv else (0, "PARTITION AVAIL")

    panel = summary(lab, run)
    assert {c for c, _ in calls} == {"lab-ctl"}
    assert len(calls) == len(probes(lab.site))
    lab.console.print(panel)
    text = lab.console.export_text()
    assert "2 check(s) failed" in text
    assert "Unable to allocate resources" in text


def test_the_layer_registers_its_summary() -> None:
    from bitten.lab.layers import LAYERS, load

    assert "bitten.lab.layers.slurm" in LAYERS
    load()
    assert summary in SUMMARIES
