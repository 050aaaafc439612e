"""The what-if simulator: invariants (no policy = baseline, energy conservation), determinism, the policy
semantics shared with the controller, SWF input and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bitten.cli import app
from bitten.energy import swf, traces, whatif
from bitten.energy.cluster import ClusterModel
from bitten.energy.energinet import top_hours_rank
from bitten.energy.policy import PolicyMachine, active_mask, day_ranks, trigger_mask
from bitten.energy.signals import Point
from bitten.site.model import Policy

from conftest import INVENTORIES

START = 1767225600.0  # 2026-01-01T00:00Z
WEEK = Path(__file__).resolve().parents[2] / "src" / "bitten" / "energy" / "data" / "bitten-week.swf"
MODEL = ClusterModel()


def policy(**kw: object) -> Policy:
    raw: dict[str, object] = {"name": "p", "when": [{"signal": "co2", "above": 200, "hysteresis": 20}],
                              "action": {"type": "gpu_cap", "partition": "gpu", "watts_per_gpu": 600},
                              "min_hold_s": 3600, "min_release_s": 1800}
    raw.update(kw)
    return Policy.model_validate(raw)


CAP = policy()
HOLD = policy(name="hold", action={"type": "hold", "qos": "flexible"}, min_hold_s=0, min_release_s=0)
WATER = policy(name="water", when=[{"signal": "requested_supply_temperature", "above": 60}],
               action={"type": "cdu_setpoint", "cdu": "a", "supply_temperature_c": 45})


@pytest.fixture(scope="module")
def week() -> tuple[swf.Jobs, traces.SignalTrace]:
    return swf.load(WEEK), traces.generate(START, START + 7 * 86400, 300.0, seed=1)


def test_no_policy_is_the_baseline(week: tuple[swf.Jobs, traces.SignalTrace]) -> None:
    jobs, trace = week
    base = whatif.replay(jobs, trace, MODEL)
    again = whatif.replay(jobs, trace, MODEL, ())
    never = whatif.replay(jobs, trace, MODEL, (policy(when=[{"signal": "co2", "above": 1e6}]),))
    for other in (again, never):
        assert other.totals == base.totals
        assert np.array_equal(other.facility_kw, base.facility_kw)
        assert np.array_equal(other.start, base.start) and np.array_equal(other.end, base.end)


def test_energy_is_conserved(week: tuple[swf.Jobs, traces.SignalTrace]) -> None:
    jobs, trace = week
    for pols in ((), (CAP, HOLD, WATER)):
        o = whatif.replay(jobs, trace, MODEL, pols)
        assert np.allclose(o.facility_kw, o.it_kw + o.overhead_kw + o.heat_pump_kw)
        assert np.allclose(o.it_kw, o.captured_kw + o.air_kw)  # every watt of IT power leaves as heat
        assert np.allclose(o.delivered_kw, o.captured_used_kw + o.heat_pump_kw)
        assert (o.captured_used_kw <= o.captured_kw + 1e-9).all()
        assert (o.delivered_kw <= trace.heat_demand + 1e-9).all() and (o.heat_pump_kw >= 0).all()
        h = trace.step_s / 3600
        assert o.totals["facility_energy_mwh"] == pytest.approx(o.facility_kw.sum() * h / 1000)
        # GPU-seconds of work: every finished job's busy GPU time equals its size x its (stretched) run time
        finished = np.isfinite(o.end) & (jobs.partition == swf.GPU_PARTITION) & (o.end <= trace.t[-1] + 300)
        done = ((o.end[finished] - o.start[finished]) * jobs.size[finished]).sum()
        busy_total = o.busy_gpus.sum() * trace.step_s
        assert busy_total >= done - 1e-6


def test_occupancy_is_exact_for_fractional_steps() -> None:
    occ = whatif._occupancy(np.array([START + 150.0]), np.array([START + 450.0]), np.array([8.0]), START, 300.0, 3)
    assert occ.tolist() == [4.0, 4.0, 0.0]


def test_deterministic_for_a_seed() -> None:
    a = swf.generate(START, 2, seed=5)
    b = swf.generate(START, 2, seed=5)
    c = swf.generate(START, 2, seed=6)
    assert swf.dump(a, START) == swf.dump(b, START) != swf.dump(c, START)
    ta, tb = traces.generate(START, START + 86400, seed=5), traces.generate(START, START + 86400, seed=5)
    assert np.array_equal(ta.co2, tb.co2) and np.array_equal(ta.price, tb.price)


def test_a_cap_lowers_power_and_stretches_jobs(week: tuple[swf.Jobs, traces.SignalTrace]) -> None:
    jobs, trace = week
    base = whatif.replay(jobs, trace, MODEL)
    capped = whatif.replay(jobs, trace, MODEL, (CAP,))
    mask = capped.levers.cap_w < MODEL.gpu_max_w
    assert mask.any() and (capped.levers.cap_w[mask] == 600).all()
    assert capped.totals["mean_runtime_stretch"] > 1.0 == base.totals["mean_runtime_stretch"]
    assert capped.totals["it_energy_mwh"] < base.totals["it_energy_mwh"]
    # per busy GPU, capped steps draw at most the cap
    per_gpu = (capped.it_kw * 1000 - MODEL.service_w)[mask]
    assert (per_gpu > 0).all()


def test_held_jobs_do_not_start_while_held(week: tuple[swf.Jobs, traces.SignalTrace]) -> None:
    jobs, trace = week
    o = whatif.replay(jobs, trace, MODEL, (HOLD.model_copy(update={"when": CAP.when}),))
    held = o.levers.held
    assert held.any()
    started = np.isfinite(o.start) & jobs.flexible
    idx = ((o.start[started] - START) // 300).astype(int)
    assert not held[idx].any()
    assert o.totals["mean_flexible_bounded_slowdown"] >= whatif.replay(jobs, trace, MODEL).totals[
        "mean_flexible_bounded_slowdown"]


def test_warmer_water_means_less_heat_pump(week: tuple[swf.Jobs, traces.SignalTrace]) -> None:
    jobs, trace = week
    base = whatif.replay(jobs, trace, MODEL)
    warm = whatif.replay(jobs, trace, MODEL, (WATER,))
    assert warm.levers.supply_c.max() == 45
    assert warm.totals["heat_pump_energy_mwh"] < base.totals["heat_pump_energy_mwh"]


def test_cop_model() -> None:
    cop = MODEL.cop(np.array([50.0, 50.0, 80.0]), np.array([70.0, 50.0, 60.0]))
    assert 2.0 <= cop[0] <= 8.0 and cop[0] < cop[1]
    assert np.isinf(cop[2])  # hot enough for a heat exchanger: no heat pump


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_controller_and_the_simulator_agree(seed: int) -> None:
    """PolicyMachine (one moment at a time) and active_mask (a whole trace) give the same states."""
    rng = np.random.default_rng(seed)
    n = 2000
    t = START + np.arange(n) * 300.0
    values = 200 + np.cumsum(rng.normal(0, 15, n))
    values[rng.uniform(size=n) < 0.05] = np.nan  # unknown readings
    pol = policy(when=[{"signal": "co2", "above": 220, "hysteresis": 30},
                       {"signal": "co2", "below": 100, "hysteresis": 10}], min_hold_s=1800, min_release_s=900)
    for candidate in (pol, pol.model_copy(update={"match": "all"})):
        vector = active_mask(candidate, t, [trigger_mask(tr, values) for tr in candidate.when])
        machine = PolicyMachine(candidate)
        scalar = [machine.update(float(ti), {"co2": None if np.isnan(v) else float(v)}).active
                  for ti, v in zip(t, values, strict=True)]
        assert vector.tolist() == scalar


def test_top_hours_ranks_agree() -> None:
    rng = np.random.default_rng(1)
    t = START + np.arange(288) * 300.0
    quarter = np.repeat(rng.normal(600, 100, 96), 3)
    ranks = day_ranks(t, quarter, 300.0, np.zeros(288, dtype=np.int64))
    points = [Point(START + i * 900, float(quarter[i * 3])) for i in range(96)]
    for i in range(0, 288, 7):
        assert ranks[i] == top_hours_rank(points, True, float(t[i]), 900)[0]


def test_swf_round_trip_and_errors(tmp_path: Path) -> None:
    jobs = swf.load(WEEK)
    assert len(jobs) == 1074 and jobs.header["UnixStartTime"] == "1767225600"
    assert set(np.unique(jobs.partition)) == {1, 2} and jobs.flexible.any()
    again = swf.parse(swf.dump(jobs, START))
    assert np.array_equal(again.submit, jobs.submit) and np.array_equal(again.runtime, jobs.runtime)
    with pytest.raises(swf.SwfError, match=r"x.swf:2: expected 18 fields, got 3"):
        swf.parse("; UnixStartTime: 0\n1 2 3\n", "x.swf")
    with pytest.raises(swf.SwfError, match="fields must be numbers"):
        swf.parse("1 0 -1 10 1 -1 -1 1 10 -1 1 1 1 1 1 one -1 -1\n")
    skipped = swf.parse("1 0 -1 10 256 -1 -1 1 10 -1 1 1 1 1 1 1 -1 -1\n2 0 -1 10 1 -1 -1 1 10 -1 1 1 1 1 1 7 -1 -1\n",
                        max_gpus=128)
    assert len(skipped) == 0 and skipped.skipped == 2


def test_cli_simulate(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["energy", "simulate", str(INVENTORIES / "bitten"), "--jobs", str(WEEK),
                                 "--days", "7", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "facility energy (E_DC)" in result.stdout and "CO2 of the electricity" in result.stdout
    page = (tmp_path / "simulation.html").read_text()
    assert page.count("<svg") == 4 and "ASSUMPTION" in page and "grid-peak-cap" in page
    bad = tmp_path / "bad.swf"
    bad.write_text("1 2 3\n")
    result = runner.invoke(app, ["energy", "simulate", str(INVENTORIES / "bitten"), "--jobs", str(bad)])
    assert result.exit_code == 2 and "bad.swf:1: expected 18 fields" in result.stderr
