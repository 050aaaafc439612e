"""Prometheus metrics of the energy controller, from its latest cycle (base units; counters end in _total).

==========================================================================  ===========================================
bitten_energy_controller_mode{mode}                                         1 for the mode in force (shadow or act)
bitten_energy_controller_cycles_total                                       cycles run
bitten_energy_controller_last_cycle_timestamp_seconds                       when the last cycle ran
bitten_energy_controller_cycle_duration_seconds                             how long the last cycle took
bitten_energy_signal_usable{signal}                                         1 if the signal may be decided on
bitten_energy_signal_status{signal,status}                                  1 for the signal's status
bitten_energy_signal_age_seconds{signal}                                    now - the start of the value's period
bitten_energy_signal_not_usable_total{signal,status}                        readings that could not be used
bitten_energy_grid_co2_intensity_kilograms_per_joule                        grid CO2 (g/kWh / 3.6e9), realised or
                                                                            the labelled forecast fallback
bitten_energy_grid_co2_forecast_kilograms_per_joule                         the forecast for now
bitten_energy_grid_price_per_joule{currency}                                day-ahead price (per MWh / 3.6e9)
bitten_energy_heat_demand_watts                                             the heat network's demand
bitten_energy_heat_requested_supply_temperature_celsius                     the supply temperature it asks for
bitten_energy_source_requests_total{source}                                 requests to a signal source
bitten_energy_source_errors_total{source}                                   failed requests
bitten_energy_source_garbage_total{source}                                  unusable answers or records
bitten_energy_source_last_success_timestamp_seconds{source}                 last good answer
bitten_energy_policy_active{policy}                                         1 while the policy is active
bitten_energy_policy_changes_total{policy}                                  switches on or off
bitten_energy_gpu_power_limit_wanted_watts{partition}                       the cap wanted (absent: uncapped)
bitten_energy_gpu_power_limit_watts{node}                                   lowest GPU limit the node read back
bitten_energy_jobs_held{qos}                                                jobs the controller holds
bitten_energy_interlock_active{kind,target}                                 1 per active interlock
bitten_energy_actions_total{actuator,result}                                ok, failed, read, shadow
bitten_energy_node_power_watts{node}                                        node power (BMC EnvironmentMetrics)
bitten_energy_node_energy_joules_total{node}                                the BMC's energy counter
bitten_energy_node_coolant_heat_watts{node}                                 heat the node's coolant removes
bitten_energy_node_stale{node}                                              1 without a good reading for a while
bitten_energy_node_garbage_fields_total{node}                               implausible BMC fields
bitten_energy_gpu_power_watts{node}                                         the node's GPUs' power (DCGM, sum)
bitten_energy_gpu_energy_joules_total{node}                                 the GPUs' DCGM energy counters (sum)
bitten_energy_gpu_power_stale{node}                                         1 without a good DCGM reading a while
bitten_energy_gpu_garbage_values_total{node}                                implausible DCGM values
==========================================================================  ===========================================
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bitten.energy.signals import STATUSES

if TYPE_CHECKING:
    from bitten.energy.controller import Controller

P = "bitten_energy_"
G_PER_KWH_TO_KG_PER_J = 1 / 3.6e9  # 1 g/kWh = 1e-3 kg / 3.6e6 J
PER_MWH_TO_PER_J = 1 / 3.6e9


def _g(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(P + name, doc, labels=labels or [])


class ControllerCollector(Collector):
    def __init__(self, controller: Controller) -> None:
        self.c = controller

    def collect(self) -> Iterator[Metric]:
        c = self.c
        now = time.time()
        with c.lock:
            cyc = c.last
            cycles = c.cycles
            counters = dict(c.counters)
            changes = dict(c.changes)
        mode = _g("controller_mode", "1 for the mode in force", ["mode"])
        current = cyc.mode if cyc else c.mode()
        for m in ("shadow", "act"):
            mode.add_metric([m], 1.0 if m == current else 0.0)
        yield mode
        yield CounterMetricFamily(P + "controller_cycles", "cycles run", value=cycles)
        if cyc is not None:
            yield GaugeMetricFamily(P + "controller_last_cycle_timestamp_seconds", "when the last cycle ran",
                                    value=cyc.at)
            yield GaugeMetricFamily(P + "controller_cycle_duration_seconds", "how long the last cycle took",
                                    value=cyc.duration_s)
            yield from self._signals(cyc, now)
            wanted = _g("gpu_power_limit_wanted_watts", "the cap wanted per partition (absent: uncapped)",
                        ["partition"])
            for part, watts in sorted(cyc.cap_w.items()):
                if watts is not None:
                    wanted.add_metric([part], watts)
            yield wanted
            locks = _g("interlock_active", "1 per active interlock", ["kind", "target"])
            il = cyc.interlocks
            if il.cooling is None:
                locks.add_metric(["cooling_unknown", "cooling agent"], 1.0)
            else:
                for loop, kinds in sorted(il.cooling.items()):
                    for kind in kinds:
                        locks.add_metric([f"cooling_{kind}", loop], 1.0)
            for node in sorted(il.nodes):
                locks.add_metric(["node", node], 1.0)
            yield locks
        active = _g("policy_active", "1 while the policy is active", ["policy"])
        changed = CounterMetricFamily(P + "policy_changes", "switches on or off", labels=["policy"])
        for name, machine in sorted(c.machines.items()):
            active.add_metric([name], 1.0 if machine.active else 0.0)
            changed.add_metric([name], changes.get(name, 0))
        yield from (active, changed)
        limit = _g("gpu_power_limit_watts", "the lowest GPU power limit the node read back", ["node"])
        for node, limits in sorted(c.limits.items()):
            if limits:
                limit.add_metric([node], min(limits))
        yield limit
        held = _g("jobs_held", "jobs the controller holds", ["qos"])
        for qos in sorted(c.cfg.flexible_qos):
            held.add_metric([qos], len(c.holder.held.get(qos, ())))
        yield held
        yield from self._nodes()
        yield from self._gpus()
        actions = CounterMetricFamily(P + "actions", "actuator calls by result", labels=["actuator", "result"])
        for (actuator, result), n in sorted(counters.items()):
            actions.add_metric([actuator, result], n)
        yield actions

    def _nodes(self) -> Iterator[Metric]:
        poller = self.c.nodepower
        if poller is None:
            return
        now = time.time()
        power = _g("node_power_watts", "the node's power as its BMC reports it", ["node"])
        energy = CounterMetricFamily(P + "node_energy_joules", "the node's energy counter (BMC)", labels=["node"])
        heat = _g("node_coolant_heat_watts", "heat the node's coolant connectors remove", ["node"])
        stale = _g("node_stale", "1 if the BMC gave no good reading for stale_after_s", ["node"])
        garbage = CounterMetricFamily(P + "node_garbage_fields", "BMC fields that were not plausible numbers",
                                      labels=["node"])
        for node, st in sorted(poller.nodes.items()):
            stale.add_metric([node], 1.0 if st.stale(now, poller.stale_after_s, poller.started) else 0.0)
            garbage.add_metric([node], st.garbage_total)
            r = st.reading
            if r is None:
                continue
            if r.power_w is not None:
                power.add_metric([node], r.power_w.value)
            if r.energy_kwh is not None:
                energy.add_metric([node], r.energy_kwh.value * 3.6e6)
            if r.heat_kw is not None:
                heat.add_metric([node], r.heat_kw.value * 1000)
        yield from (power, energy, heat, stale, garbage)

    def _gpus(self) -> Iterator[Metric]:
        poller = self.c.gpupower
        if poller is None:
            return
        power = _g("gpu_power_watts", "the node's GPUs' power as DCGM reports it (sum)", ["node"])
        energy = CounterMetricFamily(P + "gpu_energy_joules", "the node's GPUs' energy counters (DCGM, sum)",
                                     labels=["node"])
        stale = _g("gpu_power_stale", "1 if dcgm-exporter gave no good reading for stale_after_s", ["node"])
        garbage = CounterMetricFamily(P + "gpu_garbage_values", "DCGM values that were not plausible numbers",
                                      labels=["node"])
        alarms = poller.alarms()
        for node, st in sorted(poller.nodes.items()):
            stale.add_metric([node], 1.0 if node in alarms else 0.0)
            garbage.add_metric([node], st.garbage_total)
            r = st.reading
            if r is None:
                continue
            if r.total_w is not None:
                power.add_metric([node], r.total_w)
            if r.total_kwh is not None:
                energy.add_metric([node], r.total_kwh * 3.6e6)
        yield from (power, energy, stale, garbage)

    def _signals(self, cyc: object, now: float) -> Iterator[Metric]:
        # imported here, not at the top: only this path needs it, and start-up stays light
        from bitten.energy.controller import Cycle

        assert isinstance(cyc, Cycle)
        health = self.c.health
        usable = _g("signal_usable", "1 if the signal may be decided on", ["signal"])
        status = _g("signal_status", "1 for the signal's status", ["signal", "status"])
        age = _g("signal_age_seconds", "now minus the start of the value's period", ["signal"])
        for name, r in sorted(cyc.readings.items()):
            usable.add_metric([name], 1.0 if r.usable else 0.0)
            for st in STATUSES:
                status.add_metric([name, st], 1.0 if r.status == st else 0.0)
            if r.at is not None:
                age.add_metric([name], now - r.at)
        yield from (usable, status, age)
        values = {
            "co2": ("grid_co2_intensity_kilograms_per_joule", "grid CO2 intensity (g/kWh / 3.6e9)",
                    G_PER_KWH_TO_KG_PER_J),
            "co2_forecast": ("grid_co2_forecast_kilograms_per_joule", "forecast grid CO2 intensity for now",
                             G_PER_KWH_TO_KG_PER_J),
            "heat_demand": ("heat_demand_watts", "the heat network's demand", 1000.0),
            "requested_supply_temperature": ("heat_requested_supply_temperature_celsius",
                                             "the supply temperature the heat network asks for", 1.0),
        }
        for signal, (metric, doc, factor) in values.items():
            got = cyc.readings.get(signal)
            if got is not None and got.usable and got.value is not None:
                yield GaugeMetricFamily(P + metric, doc, value=got.value * factor)
        price = cyc.readings.get("price")
        if price is not None and price.usable and price.value is not None:
            fam = _g("grid_price_per_joule", "day-ahead price (per MWh / 3.6e9)", ["currency"])
            fam.add_metric([price.unit.split("/")[0]], price.value * PER_MWH_TO_PER_J)
            yield fam
        not_ok = CounterMetricFamily(P + "signal_not_usable", "readings that could not be used",
                                     labels=["signal", "status"])
        with health.lock:
            for (signal, st), n in sorted(health.not_ok_total.items()):
                not_ok.add_metric([signal, st], n)
            sources = dict(health.sources)
        yield not_ok
        req = CounterMetricFamily(P + "source_requests", "requests to a signal source", labels=["source"])
        err = CounterMetricFamily(P + "source_errors", "failed requests", labels=["source"])
        gar = CounterMetricFamily(P + "source_garbage", "unusable answers or records", labels=["source"])
        last = _g("source_last_success_timestamp_seconds", "the source's last good answer", ["source"])
        for name, h in sorted(sources.items()):
            req.add_metric([name], h.requests_total)
            err.add_metric([name], h.errors_total)
            gar.add_metric([name], h.garbage_total)
            if h.last_success is not None:
                last.add_metric([name], h.last_success)
        yield from (req, err, gar, last)
