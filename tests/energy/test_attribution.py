"""Energy per job: hand-computed cases, gaps, sacct records, UCloud projects, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bitten.cli import app
from bitten.cooling.ledger import Ledger
from bitten.energy import attribution as att
from bitten.energy.signals import Point

from conftest import INVENTORIES

T0 = 1780000200.0  # 2026-05-28T20:30Z (a multiple of 300 s)
H = 3600.0
NODES = {"gpu01": att.NodeInfo(gpus=8, threads=128, nominal_w=10000.0, plugin="gpu"),
         "gpu02": att.NodeInfo(gpus=8, threads=128, nominal_w=10000.0, plugin="gpu")}


def constant(ledger: Ledger, channel: str, source: str, kw: float, start: float, end: float, every: float = 60) -> None:
    t = start
    while t <= end:
        ledger.record(channel, source, "power", t, kw)
        t += every


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    led = Ledger(tmp_path / "ledger.sqlite")
    with led.batch():
        constant(led, "node_energy", "gpu01", 2.0, T0, T0 + 2 * H)
        constant(led, "node_energy", "gpu02", 3.0, T0 + 0.5 * H, T0 + H)  # half of the job's hour only
        constant(led, "it_energy", "it-meter", 10.0, T0, T0 + 2 * H)
        constant(led, "facility_energy", "site-meter", 12.0, T0, T0 + 2 * H)
        constant(led, "reused_heat", "dh-meter", 6.0, T0, T0 + 2 * H)
    return led


def job(**kw: object) -> att.JobRecord:
    base: dict[str, object] = {"job_id": "42", "user": "alice", "account": "proj1_b200", "partition": "gpu",
                               "qos": "gpu", "nodes": ("gpu01",), "gpus": 4, "cpus": 16, "start": T0 + 0.5 * H,
                               "end": T0 + 1.5 * H, "state": "COMPLETED", "slurm_energy_j": 3.0e6}
    base.update(kw)
    return att.JobRecord(**base)  # type: ignore[arg-type]


CO2 = [Point(T0 + i * 300, 200.0) for i in range(24)]


def test_hand_computed_job(ledger: Ledger) -> None:
    r = att.attribute(job(), ledger=ledger, nodes=NODES, realised=CO2, forecast=[])
    # gpu01 draws 2 kW; the job has 4 of its 8 GPUs for one hour: 2 kW x 1 h x 0.5 = 1 kWh
    assert r.it_energy.value == pytest.approx(1.0) and r.it_energy.status == "measured"
    assert r.pue.value == pytest.approx(1.2) and r.pue.status == "measured"  # 12 kW / 10 kW
    assert r.facility_energy.value == pytest.approx(1.2)
    assert r.co2_intensity.value == pytest.approx(200.0) and r.co2_intensity.status == "measured"
    assert r.co2.value == pytest.approx(0.24) and r.co2.unit == "kg"  # 1.2 kWh x 200 g/kWh
    assert r.erf.value == pytest.approx(0.5)  # 6 kW / 12 kW
    assert r.reused_heat.value == pytest.approx(0.6)
    assert r.co2_net.value == pytest.approx(0.12)
    assert r.slurm_energy.value == pytest.approx(3.0e6 / 3.6e6) and "gpu plugin" in r.slurm_energy.how


def test_a_gap_in_a_node_series_is_scaled_and_says_so(ledger: Ledger) -> None:
    r = att.attribute(job(nodes=("gpu01", "gpu02"), gpus=16), ledger=ledger, nodes=NODES, realised=CO2, forecast=[])
    # gpu01: 2 kWh x 1.0; gpu02: 3 kW for the half hour it reported, scaled to the hour: 3 kWh x 1.0
    assert r.it_energy.value == pytest.approx(5.0)
    assert r.it_energy.status == "estimated" and "50% of the interval measured" in r.it_energy.how
    assert r.co2.status == "estimated"  # as good as its worst input


def test_no_series_is_an_estimate_from_nominal_power(tmp_path: Path) -> None:
    r = att.attribute(job(), ledger=Ledger(tmp_path / "empty.sqlite"), nodes=NODES, realised=CO2, forecast=[])
    assert r.it_energy.value == pytest.approx(10.0 * 1 * 0.5) and r.it_energy.status == "estimated"
    assert r.pue.status == "missing" and r.facility_energy.status == "missing" and r.co2.value is None
    assert "no it_energy" in r.pue.how or "no facility_energy" in r.pue.how


def test_forecast_intensity_is_an_estimate(ledger: Ledger) -> None:
    r = att.attribute(job(), ledger=ledger, nodes=NODES, realised=CO2[:3], forecast=CO2)
    assert r.co2_intensity.status == "estimated" and "forecast" in r.co2_intensity.how
    r = att.attribute(job(), ledger=ledger, nodes=NODES, realised=[], forecast=[])
    assert r.co2_intensity.status == "missing" and r.co2.status == "missing" and r.reused_heat.status == "measured"


def test_a_running_job_is_missing_not_guessed(ledger: Ledger) -> None:
    r = att.attribute(job(end=None, state="RUNNING", slurm_energy_j=None), ledger=ledger, nodes=NODES,
                      realised=CO2, forecast=[])
    assert all(getattr(r, f).value is None for f in att.FIGURES)
    assert r.it_energy.how == "the job has not ended"


def test_aggregates_count_what_is_missing(ledger: Ledger) -> None:
    results = [att.attribute(job(), ledger=ledger, nodes=NODES, realised=CO2, forecast=[]),
               att.attribute(job(job_id="43", end=None), ledger=ledger, nodes=NODES, realised=CO2, forecast=[]),
               att.attribute(job(job_id="44", user="bob", account="bob_b200", project=None), ledger=ledger,
                             nodes=NODES, realised=CO2, forecast=[])]
    users = att.aggregate(results, "user")
    assert users["alice"]["jobs"] == 2 and users["alice"]["it_energy"]["value"] == pytest.approx(1.0)
    assert users["alice"]["it_energy"]["missing_jobs"] == 1 and users["alice"]["it_energy"]["status"] == "estimated"
    assert users["bob"]["co2"]["status"] == "measured"
    doc = json.loads(att.to_json(results))
    assert doc["jobs"][0]["co2"] == {"value": 0.24, "unit": "kg", "status": "measured",
                                     "how": "facility energy x mean grid intensity"}
    assert att.to_csv(results).splitlines()[0].startswith("job_id,user,account,project")
    assert 'class="missing"' in att.to_html(results, "t")


def test_sacct_records_and_projects() -> None:
    text = ("101|alice|proj1_b200|gpu|ucloud-b200|gpu[01-02]|billing=16,cpu=32,gres/gpu=16,mem=8G,node=2|"
            "2026-06-01T10:00:00|2026-06-01T11:00:00|COMPLETED|7200000\n"
            "102|bob|bob_b200|gpu|ucloud-b200|gpu03|cpu=4,gres/gpu=1,node=1|2026-06-01T10:00:00|Unknown|RUNNING|0\n"
            "103|carol|sdu|cpu|normal|None assigned|cpu=2|None|Unknown|PENDING|\n")
    jobs = att.parse_sacct(text)
    assert jobs[0].nodes == ("gpu01", "gpu02") and jobs[0].gpus == 16 and jobs[0].slurm_energy_j == 7200000
    assert jobs[1].end is None and jobs[1].slurm_energy_j is None and jobs[2].nodes == ()
    assert att.project_of("proj1_b200", "alice", ["b200", "cpu"]) == "proj1"
    assert att.project_of("bob_b200", "bob", ["b200"]) is None  # a personal workspace
    assert att.project_of("sdu", "carol", ["b200"]) is None
    with pytest.raises(att.SacctError, match="sacct:1: expected 11 fields"):
        att.parse_sacct("1|2|3\n")
    with pytest.raises(att.SacctError, match="sacct:1: unparseable time 'noon'"):
        att.parse_sacct("1|a|b|c|d|n1|cpu=1|noon|Unknown|RUNNING|\n")


def test_cli_jobs(ledger: Ledger, tmp_path: Path) -> None:
    ledger.close()
    sacct = tmp_path / "sacct.txt"
    sacct.write_text("7|alice|sdu|gpu|gpu|gpu01|cpu=16,gres/gpu=4,node=1|2026-05-28T20:40:00|2026-05-28T21:40:00|"
                     "COMPLETED|0\n")
    signals = tmp_path / "signals.json"
    signals.write_text(json.dumps({"CO2Emis": {"fetched": T0, "points": [[p.t, p.value] for p in CO2]}}))
    runner = CliRunner()
    result = runner.invoke(app, ["energy", "jobs", str(INVENTORIES / "bitten"), "--ledger",
                                 str(tmp_path / "ledger.sqlite"), "--sacct", str(sacct), "--signals", str(signals)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    # 20:40-21:40 lies inside gpu01's series (20:30-22:30): 2 kW x 1 h x 4/8 GPUs
    assert doc["jobs"][0]["it_energy"] == {"value": 1.0, "unit": "kWh", "status": "measured",
                                           "how": "gpu01: measured 2.000 kWh x share 0.5"}
    assert doc["jobs"][0]["co2"]["status"] == "measured"
    assert doc["by_user"]["alice"]["jobs"] == 1
    result = runner.invoke(app, ["energy", "jobs", str(INVENTORIES / "bitten"), "--print-sacct", "--user", "bob"])
    assert result.stdout.startswith("sacct --allusers --allocations --parsable2") and "--user bob" in result.stdout


def test_slurm_accounts_energy_per_profile(tmp_path: Path) -> None:
    from bitten.capabilities import load_site, render_file

    site = load_site(INVENTORIES / "bitten")
    conf = render_file(site, "/etc/slurm/slurm.conf", "ctl01")
    assert "AcctGatherEnergyType=acct_gather_energy/gpu\nAcctGatherNodeFreq=30\n" in conf
    assert "JobAcctGatherFrequency=task=30,energy=30" in conf
    gather = render_file(site, "/etc/slurm/acct_gather.conf", "gpu01")
    assert "# profile xd685_b200: gpu" in gather and "NVML" in gather
    lab = load_site(INVENTORIES / "lab")
    assert "AcctGatherEnergyType" not in render_file(lab, "/etc/slurm/slurm.conf", lab.controllers[0])


def test_one_energy_plugin_per_cluster(tmp_path: Path) -> None:
    import shutil

    inv = tmp_path / "inv"
    shutil.copytree(INVENTORIES / "bitten", inv)
    energy = inv / "group_vars" / "all" / "energy.yml"
    energy.write_text(energy.read_text().replace("plugins: {xd685_b200: gpu, xd225v: none}",
                                                 "plugins: {xd685_b200: gpu, xd225v: rapl, dl325: gpu}"))
    result = CliRunner().invoke(app, ["validate", str(inv)])
    assert result.exit_code == 2
    assert "profiles name different energy plugins (gpu, rapl)" in result.stderr
    assert "acct_gather_energy/gpu reads GPUs through NVML, but profile dl325 has none" in result.stderr
    assert f"{energy}:" in result.stderr


def test_the_gpu_energy_plugin_needs_nvml_autodetection(tmp_path: Path) -> None:
    """acct_gather_energy/gpu reads energy through Slurm's GPU plugin, which gres.conf's AutoDetect chooses: without
    AutoDetect=nvml slurmd loads gpu/generic, and every job's ConsumedEnergy is 0, silently."""
    import shutil

    inv = tmp_path / "inv"
    shutil.copytree(INVENTORIES / "bitten", inv)
    slurm = inv / "group_vars" / "all" / "slurm.yml"
    slurm.write_text(slurm.read_text().replace("gres_autodetect: nvml", 'gres_autodetect: "off"'))
    result = CliRunner().invoke(app, ["validate", str(inv)])
    assert result.exit_code == 2
    assert ("acct_gather_energy/gpu (profile xd685_b200) reads energy through slurmd's NVML plugin, but "
            "bitten_slurm.gres_autodetect is off") in result.stderr
    assert "accounting.plugins.xd685_b200" in result.stderr
