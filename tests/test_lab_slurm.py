"""The lab's Slurm summary: which jobs it runs for a site, and how it reports them."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from bitten.capabilities import load_site
from bitten.lab.lab import SUMMARIES, Lab, LabError, Recap
from bitten.lab.layers.slurm import Probe, hint, probes, summary

ROOT = Path(__file__).resolve().parents[1]


def _lab() -> Lab:
    return Lab(ROOT / "inventory" / "lab", load_site([ROOT / "inventory" / "lab"]), Console(record=True))


def test_probes_use_a_qos_each_partition_allows_through_a_research_users_account() -> None:
    site = load_site([ROOT / "inventory" / "lab"])
    assert {p.user for p in probes(site)} == {"researcher"}
    found = {p.title: p.argv for p in probes(site)}
    assert found["sinfo"] == ["sinfo"]
    srun = found["srun on all 2 nodes of partition gpu"]
    assert srun[:3] == ["timeout", "90", "srun"]
    assert {"--nodes=2", "--partition=gpu", "--account=lab", "--qos=gpu"} <= set(srun)
    batch = found["batch job with one GPU, and its accounting record"][-1]
    assert "--gres=gpu:1" in batch and "sacct" in batch
    assert {"--partition=cpu", "--qos=normal"} <= set(found["srun in partition cpu"])


def test_summary_runs_every_probe_on_a_login_node_as_the_user_and_reports_failures() -> None:
    lab = _lab()
    calls: list[tuple[str, list[str]]] = []

    def run(container: str, argv: list[str]) -> tuple[int, str]:
        calls.append((container, argv))
        return (1, "srun: error: Unable to allocate resources") if "srun" in argv else (0, "PARTITION AVAIL")

    panel = summary(lab, run)
    assert {c for c, _ in calls} == {"lab-login"}
    assert all(argv[:4] == ["runuser", "-u", "researcher", "--"] for _, argv in calls)
    assert len(calls) == len(probes(lab.site))
    lab.console.print(panel)
    text = lab.console.export_text()
    assert "2 check(s) failed" in text
    assert "Unable to allocate resources" in text
    assert "hint" not in text  # not an account or QoS problem
    assert panel is not None and getattr(panel, "failed", 0) == 2


def test_an_account_or_qos_refusal_gets_a_hint() -> None:
    site = load_site([ROOT / "inventory" / "lab"])
    as_root = Probe("sbatch", ["sbatch", "--partition=gpu"], user="root")
    advice = hint(site, as_root, "sbatch: error: Batch job submission failed: Invalid qos specification")
    assert advice is not None
    assert "account root, QoS normal" in advice and "runuser -u researcher -- sbatch" in advice
    assert "gpu: gpu, ucloud-b200" in advice and "lab: users researcher, QoS normal, gpu" in advice
    as_user = Probe("sbatch", ["sbatch"], user="researcher")
    advice = hint(site, as_user, "sbatch: error: Batch job submission failed: Invalid account or account/partition "
                  "combination specified")
    assert advice is not None and "sacctmgr show assoc user=researcher" in advice
    assert hint(site, as_root, "sbatch: error: Unable to allocate resources") is None


def test_probes_ask_for_the_memory_they_need() -> None:
    """Without --mem a job gets a whole node's memory and waits on a busy lab: every job asks for a little."""
    for probe in probes(load_site([ROOT / "inventory" / "lab"])):
        if "srun" in probe.argv or "sbatch" in " ".join(probe.argv):
            assert "--mem=64M" in " ".join(probe.argv), probe.title


def test_lab_up_fails_when_a_summary_check_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    lab = _lab()
    monkeypatch.setattr(Lab, "summary", lambda self, recap: 2)
    for step in ("_ssh_key", "_network", "_containers", "_services"):
        monkeypatch.setattr(Lab, step, lambda self: None)
    # the layers' set-up steps (the bare nodes' VMs, their BMC) act on this machine: none of them here
    monkeypatch.setattr("bitten.lab.lab.SETUPS", [])
    monkeypatch.setattr("bitten.lab.lab.ensure_image", lambda recipe, log: ("ref", False))
    monkeypatch.setattr(Lab, "run_playbook", lambda self, playbook, extra: Recap())
    with pytest.raises(LabError, match="2 summary check"):
        lab.up(ROOT / "playbooks" / "site.yml")


def test_lab_up_without_playbooks_shows_the_summary_but_its_checks_do_not_fail_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing converged (up(None), `bitten lab up --no-playbook`): Slurm's checks cannot pass yet, and say nothing."""
    lab = _lab()
    shown: list[int] = []
    monkeypatch.setattr(Lab, "summary", lambda self, recap: shown.append(2) or 2)
    for step in ("_ssh_key", "_network", "_containers", "_services"):
        monkeypatch.setattr(Lab, step, lambda self: None)
    # the layers' set-up steps (the bare nodes' VMs, their BMC) act on this machine: none of them here
    monkeypatch.setattr("bitten.lab.lab.SETUPS", [])
    monkeypatch.setattr("bitten.lab.lab.ensure_image", lambda recipe, log: ("ref", False))
    assert lab.up(playbook=None).returncode == 0
    assert shown == [2]


def test_the_layer_registers_its_summary() -> None:
    from bitten.lab.layers import LAYERS, load

    assert "bitten.lab.layers.slurm" in LAYERS
    load()
    assert summary in SUMMARIES
