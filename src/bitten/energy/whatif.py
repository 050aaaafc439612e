"""What if: replay signal and job traces through the energy policies and the cluster model, against the same period
without the policies.

1. The policies' states per step come from :mod:`bitten.energy.policy` (vectorised over the trace): the GPU cap
   in force (the lowest active ``gpu_cap`` of the GPU partition), whether flexible jobs are held, and the loops'
   supply temperature (an active ``cdu_setpoint``, else the model's reference).
2. A first-fit scheduler (jobs in submission order; a job starts as soon as its GPUs or nodes are free and its QoS
   is not held) runs the job trace. A job's progress is the integral of its speed under the cap
   (:class:`~bitten.energy.cluster.ClusterModel`), so a cap stretches the jobs it overlaps; running jobs are never
   stopped.
3. Power, heat and the heat pump per step follow from the GPUs busy per power class (vectorised), and the totals
   from the signals: CO2 = facility energy x grid intensity at the time; cost = facility energy x day-ahead
   price (spot only: no tariffs, no taxes); heat delivered to the network.

Invariants (tests): no policy gives the baseline exactly; energy is conserved (facility = IT + overhead + heat
pump; delivered heat = captured heat used + heat-pump electricity).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from bitten.energy.cluster import ClusterModel
from bitten.energy.energinet import DANISH_TIME
from bitten.energy.policy import active_mask, day_ranks, trigger_mask
from bitten.energy.swf import CPU_PARTITION, GPU_PARTITION, POWER_CLASSES, Jobs
from bitten.energy.traces import SignalTrace
from bitten.site.model import CduSetpointAction, GpuCapAction, HoldAction, Policy

F64 = npt.NDArray[np.float64]
BOUNDED_SLOWDOWN_S = 60.0


@dataclass
class Levers:
    """The policies' effect per step."""

    cap_w: F64
    held: npt.NDArray[np.bool_]
    supply_c: F64
    active: dict[str, npt.NDArray[np.bool_]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """One replay: series per step and per-job results."""

    t: F64
    step_s: float
    levers: Levers
    it_kw: F64
    facility_kw: F64
    heat_pump_kw: F64
    overhead_kw: F64
    captured_kw: F64
    captured_used_kw: F64
    delivered_kw: F64
    air_kw: F64
    busy_gpus: F64
    start: F64
    end: F64
    totals: dict[str, float] = field(default_factory=dict)


def _signal(trace: SignalTrace, name: str) -> F64:
    return {"co2": trace.co2, "co2_forecast": trace.co2_forecast, "price": trace.price,
            "heat_demand": trace.heat_demand, "requested_supply_temperature": trace.supply_temperature}[name]


def levers(policies: tuple[Policy, ...], trace: SignalTrace, model: ClusterModel, gpu_partition: str = "gpu",
           flexible_qos: tuple[str, ...] = ("flexible",)) -> Levers:
    n = len(trace)
    cap = np.full(n, model.gpu_max_w)
    held = np.zeros(n, dtype=np.bool_)
    supply = np.full(n, model.reference_supply_c)
    out = Levers(cap, held, supply)
    ranks = None
    for policy in policies:
        if not policy.enabled:
            continue
        states = []
        for trigger in policy.when:
            if trigger.top_hours is not None and ranks is None:
                days = np.array([datetime.fromtimestamp(float(x), DANISH_TIME).toordinal()
                                 for x in trace.t[:: max(1, int(3600 // trace.step_s))]], dtype=np.int64)
                day = np.repeat(days, max(1, int(3600 // trace.step_s)))[:n]
                ranks = day_ranks(trace.t, trace.price, trace.step_s, day)
            states.append(trigger_mask(trigger, _signal(trace, trigger.signal), ranks))
        mask = active_mask(policy, trace.t, states)
        out.active[policy.name] = mask
        action = policy.action
        if isinstance(action, GpuCapAction):
            if action.partition != gpu_partition:
                out.ignored.append(f"{policy.name}: the model has one GPU partition ({gpu_partition})")
                continue
            cap[mask] = np.minimum(cap[mask], action.watts_per_gpu)
        elif isinstance(action, HoldAction):
            if action.qos not in flexible_qos:
                out.ignored.append(f"{policy.name}: QoS {action.qos} is not the trace's flexible queue")
                continue
            held |= mask
        elif isinstance(action, CduSetpointAction):
            supply[mask] = action.supply_temperature_c
    return out


def _progress(speed: F64, t: F64, step_s: float) -> F64:
    """Cumulative full-speed seconds of work done at each step boundary (len n + 1)."""
    return np.concatenate(([0.0], np.cumsum(speed * step_s)))


def _finish(cum: F64, speed: F64, t0: float, step_s: float, start: float, work: float) -> float:
    """When a job that starts at ``start`` has done ``work`` full-speed seconds (inf: not within the trace)."""
    n = len(speed)
    i = min(n - 1, max(0, int((start - t0) // step_s)))
    done_at_start = cum[i] + speed[i] * (start - (t0 + i * step_s))
    target = done_at_start + work
    j = int(np.searchsorted(cum, target, side="left"))  # cum[j-1] < target <= cum[j]
    if j > n:
        return math.inf
    j = max(j, i + 1)
    k = j - 1  # the step in which the job ends
    rate = speed[k]
    return float(t0 + k * step_s + (target - cum[k]) / rate) if rate > 0 else math.inf


def schedule(jobs: Jobs, lv: Levers, trace: SignalTrace, model: ClusterModel) -> tuple[F64, F64]:
    """Start and end time of every job (inf: did not start / finish within the trace)."""
    t0, step = float(trace.t[0]), trace.step_s
    horizon = t0 + len(trace) * step
    speeds = {k: model.speed(w, lv.cap_w) for k, w in POWER_CLASSES.items()}
    cums = {k: _progress(s, trace.t, step) for k, s in speeds.items()}
    ones = np.ones(len(trace))
    cum_one = _progress(ones, trace.t, step)
    classes = np.where(np.isin(jobs.power_class, list(POWER_CLASSES)), jobs.power_class, 3)
    start = np.full(len(jobs), math.inf)
    end = np.full(len(jobs), math.inf)
    free = {GPU_PARTITION: model.gpus, CPU_PARTITION: model.cpu_nodes}
    # hold transitions: the times at which held flips (pending flexible jobs may start after a release)
    flips = (t0 + np.flatnonzero(np.diff(lv.held.astype(np.int8)) != 0) * step + step).tolist()
    running: list[tuple[float, int]] = []
    pending: list[int] = []
    nxt = 0
    submit = jobs.submit
    order_events = sorted(flips)
    fi = 0
    now = t0
    while True:
        candidates = [submit[nxt] if nxt < len(jobs) else math.inf, running[0][0] if running else math.inf,
                      order_events[fi] if fi < len(order_events) else math.inf]
        now = max(now, min(candidates))
        if now >= horizon or now == math.inf:
            break
        while running and running[0][0] <= now:
            _, j = heapq.heappop(running)
            free[int(jobs.partition[j])] += int(jobs.size[j])
        while nxt < len(jobs) and submit[nxt] <= now:
            if submit[nxt] >= t0:
                pending.append(nxt)
            nxt += 1
        while fi < len(order_events) and order_events[fi] <= now:
            fi += 1
        step_index = min(len(trace) - 1, int((now - t0) // step))
        is_held = bool(lv.held[step_index])
        still: list[int] = []
        for j in pending:
            part = int(jobs.partition[j])
            if free[part] >= jobs.size[j] and not (is_held and jobs.queue[j] == 2):
                free[part] -= int(jobs.size[j])
                start[j] = now
                if part == GPU_PARTITION:
                    k = int(classes[j])
                    end[j] = _finish(cums[k], speeds[k], t0, step, now, float(jobs.runtime[j]))
                else:
                    end[j] = _finish(cum_one, ones, t0, step, now, float(jobs.runtime[j]))
                heapq.heappush(running, (end[j], j))
            else:
                still.append(j)
        pending = still
    return start, end


def _occupancy(starts: F64, ends: F64, weights: F64, t0: float, step: float, n: int) -> F64:
    """Mean of sum(weight of jobs running) over each step: exact for fractional starts and ends."""
    b = t0 + np.arange(n + 1) * step
    ok = np.isfinite(starts)
    s, e, w = starts[ok], np.minimum(ends[ok], b[-1]), weights[ok]
    times = np.r_[s, e]
    deltas = np.r_[w, -w]
    order = np.argsort(times, kind="stable")
    times, deltas = times[order], deltas[order]
    cd = np.r_[0.0, np.cumsum(deltas)]
    cdt = np.r_[0.0, np.cumsum(deltas * times)]
    idx = np.searchsorted(times, b, side="left")
    integral = b * cd[idx] - cdt[idx]  # F(b) = sum over events before b of d * (b - tau)
    return np.diff(integral) / step  # type: ignore[no-any-return]


def replay(jobs: Jobs, trace: SignalTrace, model: ClusterModel, policies: tuple[Policy, ...] = (), *,
           gpu_partition: str = "gpu", flexible_qos: tuple[str, ...] = ("flexible",)) -> Outcome:
    lv = levers(policies, trace, model, gpu_partition, flexible_qos)
    start, end = schedule(jobs, lv, trace, model)
    n, step, t0 = len(trace), trace.step_s, float(trace.t[0])
    gpu_jobs = jobs.partition == GPU_PARTITION
    leak = model.leakage_factor(lv.supply_c)
    gpu_w = np.zeros(n)
    busy = np.zeros(n)
    for k, demand in POWER_CLASSES.items():
        sel = gpu_jobs & ((jobs.power_class == k) | ((k == 3) & ~np.isin(jobs.power_class, list(POWER_CLASSES))))
        occ = _occupancy(start[sel], end[sel], jobs.size[sel].astype(np.float64), t0, step, n)
        busy += occ
        gpu_w += occ * model.gpu_power(demand, lv.cap_w)
    gpu_w = (gpu_w + (model.gpus - busy) * model.gpu_idle_w) * leak
    cpu_busy = _occupancy(start[~gpu_jobs], end[~gpu_jobs], jobs.size[~gpu_jobs].astype(np.float64), t0, step, n)
    host_w = model.gpu_nodes * model.host_idle_w + busy / model.gpus_per_node * model.host_busy_w
    cpu_w = model.cpu_nodes * model.cpu_node_idle_w + cpu_busy * (model.cpu_node_busy_w - model.cpu_node_idle_w)
    it_kw = (gpu_w + host_w + cpu_w + model.service_w) / 1000.0
    captured = it_kw * model.liquid_capture_ratio
    air = it_kw - captured
    cop = model.cop(lv.supply_c + model.loop_delta_k, trace.supply_temperature)
    with np.errstate(divide="ignore", invalid="ignore"):
        available = np.where(np.isinf(cop), captured, captured * cop / (cop - 1))
    delivered = np.minimum(available, trace.heat_demand)
    share = np.divide(delivered, available, out=np.zeros(n), where=available > 0)
    captured_used = captured * share
    heat_pump = delivered - captured_used
    overhead = it_kw * model.overhead_ratio
    facility = it_kw + overhead + heat_pump
    out = Outcome(trace.t, step, lv, it_kw, facility, heat_pump, overhead, captured, captured_used, delivered, air,
                  busy, start, end)
    out.totals = totals(out, jobs, trace, model)
    return out


def totals(o: Outcome, jobs: Jobs, trace: SignalTrace, model: ClusterModel) -> dict[str, float]:
    h = o.step_s / 3600.0
    started = np.isfinite(o.start)
    finished = np.isfinite(o.end) & (o.end <= o.t[0] + len(o.t) * o.step_s)
    wait = (o.start - jobs.submit)[started & (jobs.submit >= o.t[0])]
    run = o.end[finished] - o.start[finished]
    stretch = run / jobs.runtime[finished]
    bsld = np.maximum(1.0, (o.end - jobs.submit)[finished] / np.maximum(jobs.runtime[finished], BOUNDED_SLOWDOWN_S))
    flex = jobs.flexible[finished]
    return {
        "it_energy_mwh": float(o.it_kw.sum() * h / 1000),
        "facility_energy_mwh": float(o.facility_kw.sum() * h / 1000),
        "heat_pump_energy_mwh": float(o.heat_pump_kw.sum() * h / 1000),
        "heat_delivered_mwh": float(o.delivered_kw.sum() * h / 1000),
        "co2_t": float((o.facility_kw * h * trace.co2).sum() / 1e6),
        "cost_dkk": float((o.facility_kw * h / 1000 * trace.price).sum()),
        "pue": float(o.facility_kw.sum() / o.it_kw.sum()),
        "erf": float(o.delivered_kw.sum() / o.facility_kw.sum()),
        "gpu_utilisation": float(o.busy_gpus.mean() / model.gpus),
        "jobs_finished": float(finished.sum()),
        "jobs_started": float(started.sum()),
        "mean_wait_h": float(wait.mean() / 3600) if len(wait) else 0.0,
        "p95_wait_h": float(np.percentile(wait, 95) / 3600) if len(wait) else 0.0,
        "mean_bounded_slowdown": float(bsld.mean()) if len(bsld) else 0.0,
        "mean_flexible_bounded_slowdown": float(bsld[flex].mean()) if flex.any() else 0.0,
        "mean_runtime_stretch": float(stretch.mean()) if len(stretch) else 1.0,
        "capped_hours": float((o.levers.cap_w < model.gpu_max_w).sum() * h),
        "held_hours": float(o.levers.held.sum() * h),
    }

