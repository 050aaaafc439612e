"""The what-if report: policy against baseline as a table (JSON, text) and an HTML page with plots."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from bitten.cooling.report import svg_plot
from bitten.energy.cluster import ClusterModel
from bitten.energy.traces import SHAPE, SignalTrace
from bitten.energy.whatif import Outcome

#: metric -> (label, unit, decimals)
METRICS: dict[str, tuple[str, str, int]] = {
    "it_energy_mwh": ("IT energy", "MWh", 1),
    "facility_energy_mwh": ("facility energy (E_DC)", "MWh", 1),
    "heat_pump_energy_mwh": ("heat-pump electricity", "MWh", 1),
    "heat_delivered_mwh": ("heat delivered to district heating", "MWh", 1),
    "co2_t": ("CO2 of the electricity", "t", 1),
    "cost_dkk": ("electricity cost (day-ahead spot only)", "DKK", 0),
    "pue": ("PUE", "", 3),
    "erf": ("ERF", "", 3),
    "gpu_utilisation": ("GPU utilisation", "", 3),
    "jobs_finished": ("jobs finished", "", 0),
    "mean_wait_h": ("mean wait", "h", 2),
    "p95_wait_h": ("95th percentile wait", "h", 2),
    "mean_bounded_slowdown": ("mean bounded slowdown", "", 3),
    "mean_flexible_bounded_slowdown": ("mean bounded slowdown, flexible jobs", "", 3),
    "mean_runtime_stretch": ("mean run-time stretch under caps", "", 3),
    "capped_hours": ("hours with a GPU cap", "h", 1),
    "held_hours": ("hours with flexible jobs held", "h", 1),
}


@dataclass
class Comparison:
    site: str
    start: float
    end: float
    step_s: float
    jobs: int
    trace_origin: str
    baseline: dict[str, float]
    policy: dict[str, float]
    policies: list[str]
    model: dict[str, Any]
    ignored: list[str]

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        out = []
        for key, (label, unit, dec) in METRICS.items():
            b, p = self.baseline[key], self.policy[key]
            change = "" if b == 0 else f"{(p - b) / abs(b) * 100:+.1f} %"
            out.append((label, unit, f"{b:,.{dec}f}", f"{p:,.{dec}f}", change))
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"site": self.site, "start": _iso(self.start), "end": _iso(self.end), "step_s": self.step_s,
                "jobs": self.jobs, "signals": self.trace_origin, "policies": self.policies,
                "baseline": self.baseline, "with_policies": self.policy, "model": self.model,
                "signal_shape_assumptions": SHAPE if self.trace_origin == "generated" else {},
                "ignored": self.ignored}

    def text(self) -> str:
        width = max(len(r[0]) for r in self.rows()) + 2
        lines = [f"{'metric':{width}}{'unit':6}{'baseline':>16}{'policies':>16}{'change':>10}"]
        lines += [f"{a:{width}}{u:6}{b:>16}{p:>16}{c:>10}" for a, u, b, p, c in self.rows()]
        return "\n".join(lines)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def compare(site: str, base: Outcome, pol: Outcome, trace: SignalTrace, model: ClusterModel, jobs: int,
            policies: list[str]) -> Comparison:
    return Comparison(site, float(trace.t[0]), float(trace.t[0] + len(trace) * trace.step_s), trace.step_s, jobs,
                      trace.origin, base.totals, pol.totals, policies, model.describe(), pol.levers.ignored)


def _binned(t: np.ndarray[Any, Any], y: np.ndarray[Any, Any], bins: int) -> list[tuple[float, float | None]]:
    n = len(t) - len(t) % bins if len(t) >= bins else len(t)
    if n == 0:
        return []
    width = max(1, n // bins)
    tt = t[: width * (n // width)].reshape(-1, width).mean(axis=1)
    yy = y[: width * (n // width)].reshape(-1, width).mean(axis=1)
    return [(float(a), float(b)) for a, b in zip(tt, yy, strict=True)]


def to_html(cmp: Comparison, base: Outcome, pol: Outcome, trace: SignalTrace, bins: int = 365) -> str:
    esc = html.escape
    rows = "".join(f"<tr><td>{esc(a)}</td><td>{esc(u)}</td><td class=n>{b}</td><td class=n>{p}</td>"
                   f"<td class=n>{c}</td></tr>" for a, u, b, p, c in cmp.rows())
    t = trace.t
    power = svg_plot({"facility, baseline": _binned(t, base.facility_kw, bins),
                      "facility, policies": _binned(t, pol.facility_kw, bins)},
                     {"facility, baseline": "#868e96", "facility, policies": "#1c7ed6"}, unit="kW")
    heat = svg_plot({"heat delivered, baseline": _binned(t, base.delivered_kw, bins),
                     "heat delivered, policies": _binned(t, pol.delivered_kw, bins)},
                    {"heat delivered, baseline": "#fab005", "heat delivered, policies": "#d9480f"}, unit="kW")
    signals = svg_plot({"CO2 (g/kWh)": _binned(t, trace.co2, bins),
                        "price (DKK/MWh / 10)": _binned(t, trace.price / 10, bins)},
                       {"CO2 (g/kWh)": "#2b8a3e", "price (DKK/MWh / 10)": "#862e9c"}, unit="")
    levers = svg_plot({"GPU cap in force (W)": _binned(t, pol.levers.cap_w, bins),
                       "flexible jobs held (x1000)": _binned(t, pol.levers.held.astype(float) * 1000, bins)},
                      {"GPU cap in force (W)": "#c92a2a", "flexible jobs held (x1000)": "#495057"}, unit="W")
    model_rows = "".join(f"<tr><td>{esc(k)}</td><td class=n>{esc(str(v))}</td><td>"
                         f"{'ASSUMPTION' if k in cmp.model['assumptions'] else ''}</td></tr>"
                         for k, v in cmp.model.items() if k != "assumptions")
    ignored = "".join(f"<li>{esc(i)}</li>" for i in cmp.ignored) or "<li>none</li>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>What if: energy policies on {esc(cmp.site)}</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px}}td.n{{text-align:right}}h2{{margin-top:1.5em}}</style></head><body>
<h1>What if: energy policies on {esc(cmp.site)}</h1>
<p>{esc(_iso(cmp.start))} to {esc(_iso(cmp.end))}, {cmp.step_s:g} s steps, {cmp.jobs} jobs; signals:
{esc(cmp.trace_origin)}. Policies: {esc(", ".join(cmp.policies) or "none")}. A simulation with a documented model
(bitten.energy.cluster), not a measurement: the numbers marked ASSUMPTION below are estimates.</p>
<table><tr><th>metric</th><th>unit</th><th>baseline (no policy)</th><th>with policies</th><th>change</th></tr>
{rows}</table>
<h2>Facility power (daily means)</h2>{power}
<h2>Heat delivered to district heating (daily means)</h2>{heat}
<h2>Signals (daily means)</h2>{signals}
<h2>What the policies did (daily means)</h2>{levers}
<h2>Model</h2><table><tr><th>parameter</th><th>value</th><th></th></tr>{model_rows}</table>
<h2>Policies the model could not apply</h2><ul>{ignored}</ul>
</body></html>
"""


def to_json(cmp: Comparison) -> str:
    return json.dumps(cmp.as_dict(), indent=2, sort_keys=False)
