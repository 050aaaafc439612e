"""Energy bench: the what-if simulator on a year at 5-minute steps for the reference site, and the controller's
policy decision latency. Ratios against baselines measured in the same run:

* Simulator. Baseline: the same year replayed without any policy (scheduler, power, heat and totals, no policy
  evaluation). The ratio is what the site's policies cost on top. A second baseline, the policy evaluation done
  one step at a time by the controller's own PolicyMachine (pure Python), shows what vectorising it buys.
* Decision latency: one PolicyMachine.update per policy of the reference site (what the controller does per
  cycle besides reading signals and actuators), against a bare dict lookup loop of the same length.
"""

from __future__ import annotations

import time
from pathlib import Path

from bitten.capabilities import load_site
from bitten.energy import swf, traces, whatif
from bitten.energy.cluster import ClusterModel
from bitten.energy.policy import PolicyMachine, active_mask, trigger_mask

ROOT = Path(__file__).resolve().parents[1]
START = 1767225600.0


def best(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    site = load_site(ROOT / "inventory" / "bitten")
    model = ClusterModel.from_site(site)
    trace = traces.generate(START, START + 365 * 86400, 300.0, seed=1)
    jobs = swf.generate(START, 365, gpus=model.gpus, cpu_nodes=model.cpu_nodes, seed=1)
    pols = site.energy.policies
    base = best(lambda: whatif.replay(jobs, trace, model))
    with_pol = best(lambda: whatif.replay(jobs, trace, model, pols, flexible_qos=site.energy.flexible_qos))
    print(f"simulator: a year at 5-minute steps ({len(trace)} steps, {len(jobs)} jobs, {len(pols)} policies)")
    print(f"  no-policy replay (baseline)   {base:8.3f} s")
    print(f"  replay with the policies      {with_pol:8.3f} s   ratio {with_pol / base:5.2f}")

    co2 = trace.co2
    vector = best(lambda: [active_mask(p, trace.t, [trigger_mask(tr, co2) for tr in p.when]) for p in pols[1:2]])

    def stepwise() -> None:
        machine = PolicyMachine(pols[1])
        for t, v in zip(trace.t.tolist(), co2.tolist(), strict=True):
            machine.update(t, {"co2": v, "price": None})

    scalar = best(stepwise, repeat=1)
    print(f"  one policy (co2), vectorised       {vector:8.4f} s")
    print(f"  one policy (co2), stepwise      {scalar:8.4f} s   vectorised is {scalar / vector:5.1f}x faster")

    machines = [PolicyMachine(p) for p in pols]
    values = {"co2": 260.0, "co2_forecast": 240.0, "price": 900.0, "heat_demand": 300.0,
              "requested_supply_temperature": 66.0}
    ranks = {"price": 10}
    n = 20000

    def decide() -> None:
        for i in range(n):
            for m in machines:
                m.update(START + i * 60.0, values, ranks)

    def bare() -> None:
        for _ in range(n):
            for _m in machines:
                _ = values.get("co2"), ranks.get("price")

    d, b = best(decide), best(bare)
    per = d / (n * len(machines)) * 1e6
    print(f"controller decision: {per:.2f} us per policy update (bare loop {b / (n * len(machines)) * 1e6:.3f} us; "
          f"ratio {d / b:.1f})")


if __name__ == "__main__":
    main()
