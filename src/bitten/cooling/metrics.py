"""Prometheus metrics of the cooling agent (prometheus-client), built from the agent's latest state per scrape.

Names and units (labels in braces):

======================================================================  ====================================
bitten_cooling_device_up{device,kind}                                   1 if the last poll succeeded
bitten_cooling_device_stale{device,kind}                                1 if no good reading for stale_after_s
bitten_cooling_device_last_success_timestamp_seconds{device,kind}       Unix time of the last good reading
bitten_cooling_device_reading_age_seconds{device,kind}                  seconds since the last good reading
bitten_cooling_device_consecutive_failures{device,kind}                 failed polls in a row (backoff grows)
bitten_cooling_device_poll_errors_total{device,kind}                    failed polls (counter)
bitten_cooling_device_garbage_fields_total{device}                      fields that were not usable numbers
bitten_cooling_device_poll_duration_seconds{device,kind}                duration of the last poll
bitten_cooling_supply_temperature_celsius{cdu,side,connector}           coolant supply temperature
bitten_cooling_return_temperature_celsius{cdu,side,connector}           coolant return temperature
bitten_cooling_delta_temperature_kelvin{cdu,side,connector}             return - supply
bitten_cooling_flow_liters_per_minute{cdu,side,connector}               coolant flow
bitten_cooling_heat_computed_kilowatts{cdu,side,connector}              rho * cp * flow * delta-T
bitten_cooling_heat_reported_kilowatts{cdu,side,connector}              HeatRemovedkW as the CDU reports it
bitten_cooling_heat_divergence_ratio{cdu,side,connector}                (computed - reported) / reported
bitten_cooling_heat_divergence_exceeded{cdu,side,connector}             1 if |divergence| > divergence_warn
bitten_cooling_coolant_density_kg_per_cubic_meter{cdu,side,source}      density used (config, cdu or table)
bitten_cooling_coolant_specific_heat_kj_per_kg_kelvin{cdu,side,source}  specific heat used
bitten_cooling_supply_temperature_setpoint_celsius{cdu,side,connector}  the CDU's supply set point
bitten_cooling_cdu_healthy{cdu}                                         1 if Status.Health is OK
bitten_cooling_pump_failed{cdu,pump}                                    1 if the pump reports a failure
bitten_cooling_pump_speed_percent{cdu,pump}                             pump speed
bitten_cooling_filter_healthy{cdu,filter}                               1 if the filter's health is OK
bitten_cooling_leak_detected{cdu,detector}                              1 if the detector reports a leak
bitten_cooling_meter_value{meter,register,quantity,unit}                a Modbus register, canonical unit
bitten_cooling_meter_heat_computed_kilowatts{meter}                     heat from the meter's flow and temps
bitten_cooling_meter_heat_reported_kilowatts{meter}                     heat power the meter reports
bitten_cooling_meter_heat_divergence_ratio{meter}                       (computed - reported) / reported
bitten_cooling_alarm_active{loop,kind}                                  1 while the alarm is active
bitten_cooling_alarm_since_timestamp_seconds{loop,kind}                 when the active alarm was raised
bitten_cooling_actions_total{action,result}                             drain/resume/cap actions (counter)
bitten_cooling_events_total                                             EventService events received
bitten_energy_ledger_kilowatt_hours{channel,year}                       energy this calendar year (UTC)
bitten_energy_ledger_cubic_meters{channel,year}                         water this calendar year
bitten_energy_ledger_gaps{channel,year}                                 gaps recorded this year at start-up
bitten_energy_erf_ratio{year}                                           reused heat / facility energy
bitten_energy_pue_ratio{year}                                           facility energy / IT energy
======================================================================  ====================================
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bitten.cooling.alarms import LEAK_STATES
from bitten.cooling.ledger import CHANNEL_UNITS

if TYPE_CHECKING:
    from bitten.cooling.agent import Agent

P = "bitten_cooling_"


def _g(name: str, doc: str, labels: list[str], unit: str = "") -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels, unit=unit)


class AgentCollector(Collector):
    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def collect(self) -> Iterator[Metric]:
        agent = self.agent
        cfg = agent.config
        now = time.time()
        with agent.lock:
            yield from self._devices(now)
            yield from self._cdus()
            yield from self._meters()
            active = {loop: dict(agent.tracker.kinds(loop)) for loop in cfg.loops}
            totals = dict(agent.year_totals)
            gaps = dict(agent.year_gaps)
            actions = dict(agent.engine.counter)
        alarm = _g(P + "alarm_active", "1 while the alarm is active", ["loop", "kind"])
        since = _g(P + "alarm_since_timestamp_seconds", "when the active alarm was raised", ["loop", "kind"])
        for loop in sorted(active):
            for kind in ("leak", "pump_failed", "low_flow", "high_supply_temperature", "stale"):
                alarm.add_metric([loop, kind], 1.0 if kind in active[loop] else 0.0)
                if kind in active[loop]:
                    since.add_metric([loop, kind], active[loop][kind].since)
        yield alarm
        yield since
        counter = CounterMetricFamily(P + "actions", "drain, resume and GPU power actions", labels=["action", "result"])
        for (action, result), count in sorted(actions.items()):
            counter.add_metric([action, result], count)
        yield counter
        events = CounterMetricFamily(P + "events", "EventService events received")
        events.add_metric([], agent.events_total)
        yield events
        yield from self._energy(totals, gaps)

    def _devices(self, now: float) -> Iterator[Metric]:
        agent = self.agent
        up = _g(P + "device_up", "1 if the last poll succeeded", ["device", "kind"])
        stale = _g(P + "device_stale", "1 if no good reading for stale_after_s", ["device", "kind"])
        last = _g(P + "device_last_success_timestamp_seconds", "Unix time of the last good reading",
                  ["device", "kind"])
        age = _g(P + "device_reading_age_seconds", "seconds since the last good reading", ["device", "kind"])
        fails = _g(P + "device_consecutive_failures", "failed polls in a row", ["device", "kind"])
        errors = CounterMetricFamily(P + "device_poll_errors", "failed polls", labels=["device", "kind"])
        garbage = CounterMetricFamily(P + "device_garbage_fields", "fields that were not usable numbers",
                                      labels=["device"])
        duration = _g(P + "device_poll_duration_seconds", "duration of the last poll", ["device", "kind"])
        for name, st in sorted(agent.devices.items()):
            labels = [name, st.kind]
            up.add_metric(labels, 1.0 if st.last_ok is not None and st.failures == 0 else 0.0)
            stale.add_metric(labels, 1.0 if st.stale(now, agent.config.stale_after_s, agent.started) else 0.0)
            if st.last_ok is not None:
                last.add_metric(labels, st.last_ok)
                age.add_metric(labels, now - st.last_ok)
            fails.add_metric(labels, st.failures)
            errors.add_metric(labels, st.errors_total)
            garbage.add_metric([name], st.garbage_total)
            duration.add_metric(labels, st.duration_s)
        yield from (up, stale, last, age, fails, errors, garbage, duration)

    def _cdus(self) -> Iterator[Metric]:
        agent = self.agent
        lab = ["cdu", "side", "connector"]
        fams = {key: _g(P + key, doc, lab) for key, doc in (
            ("supply_temperature_celsius", "coolant supply temperature"),
            ("return_temperature_celsius", "coolant return temperature"),
            ("delta_temperature_kelvin", "return minus supply temperature"),
            ("flow_liters_per_minute", "coolant flow"),
            ("heat_computed_kilowatts", "heat from rho * cp * flow * delta-T with the coolant's properties"),
            ("heat_reported_kilowatts", "heat removed as the CDU reports it (HeatRemovedkW)"),
            ("heat_divergence_ratio", "(computed - reported) / reported heat"),
            ("heat_divergence_exceeded", "1 if |divergence| exceeds divergence_warn"),
            ("supply_temperature_setpoint_celsius", "supply temperature set point"),
        )}
        rho = _g(P + "coolant_density_kg_per_cubic_meter", "coolant density used", ["cdu", "side", "source"])
        cp = _g(P + "coolant_specific_heat_kj_per_kg_kelvin", "coolant specific heat used", ["cdu", "side", "source"])
        healthy = _g(P + "cdu_healthy", "1 if the CDU's Status.Health is OK", ["cdu"])
        pump_failed = _g(P + "pump_failed", "1 if the pump reports a failure", ["cdu", "pump"])
        pump_speed = _g(P + "pump_speed_percent", "pump speed", ["cdu", "pump"])
        filt = _g(P + "filter_healthy", "1 if the filter's health is OK", ["cdu", "filter"])
        leak = _g(P + "leak_detected", "1 if the leak detector reports a leak", ["cdu", "detector"])
        for name, view in sorted(agent.cdu_views.items()):
            r = view.reading
            healthy.add_metric([name], 1.0 if r.health == "OK" else 0.0)
            for c in view.connectors:
                labels = [name, c.side, c.id]
                for key, value in (("supply_temperature_celsius", c.supply_c), ("return_temperature_celsius",
                                   c.return_c), ("delta_temperature_kelvin", c.delta_k),
                                   ("flow_liters_per_minute", c.flow_lpm), ("heat_computed_kilowatts",
                                   c.heat_computed_kw), ("heat_reported_kilowatts", c.heat_reported_kw),
                                   ("heat_divergence_ratio", c.divergence),
                                   ("supply_temperature_setpoint_celsius", c.setpoint_c)):
                    if value is not None:
                        fams[key].add_metric(labels, value)
                if c.divergence is not None:
                    exceeded = abs(c.divergence) > agent.config.divergence_warn
                    fams["heat_divergence_exceeded"].add_metric(labels, 1.0 if exceeded else 0.0)
                if c.props is not None:
                    source = c.props.source.split("@")[0]
                    rho.add_metric([name, c.side, source], c.props.density_kg_m3)
                    cp.add_metric([name, c.side, source], c.props.specific_heat_kj_kg_k)
            for p in r.pumps:
                pump_failed.add_metric([name, p.id], 1.0 if p.failed else 0.0)
                if p.speed_percent is not None:
                    pump_speed.add_metric([name, p.id], p.speed_percent)
            for f in r.filters:
                filt.add_metric([name, f.id], 1.0 if f.health in ("OK", None) else 0.0)
            for d in r.leak_detectors:
                leak.add_metric([name, d.id], 1.0 if d.state in LEAK_STATES else 0.0)
        yield from fams.values()
        yield from (rho, cp, healthy, pump_failed, pump_speed, filt, leak)

    def _meters(self) -> Iterator[Metric]:
        value = _g(P + "meter_value", "a Modbus register in its canonical unit", ["meter", "register", "quantity",
                                                                                  "unit"])
        computed = _g(P + "meter_heat_computed_kilowatts", "heat from the meter's flow and temperatures", ["meter"])
        reported = _g(P + "meter_heat_reported_kilowatts", "heat power the meter reports", ["meter"])
        div = _g(P + "meter_heat_divergence_ratio", "(computed - reported) / reported heat", ["meter"])
        for name, view in sorted(self.agent.meter_views.items()):
            for reg, point in view.reading.points.items():
                if point.value is not None:
                    value.add_metric([name, reg, point.quantity or "", point.unit], point.value)
            for fam, v in ((computed, view.heat_computed_kw), (reported, view.heat_reported_kw),
                           (div, view.divergence)):
                if v is not None:
                    fam.add_metric([name], v)
        yield from (value, computed, reported, div)

    def _energy(self, totals: dict[str, float | None], gaps: dict[str, int]) -> Iterator[Metric]:
        year = str(self.agent.year)
        kwh = _g("bitten_energy_ledger_kilowatt_hours", "energy in the ledger this calendar year (UTC)",
                 ["channel", "year"])
        m3 = _g("bitten_energy_ledger_cubic_meters", "water in the ledger this calendar year (UTC)",
                ["channel", "year"])
        gap = _g("bitten_energy_ledger_gaps", "gaps in the ledger this year (counted at start-up)", ["channel", "year"])
        for channel, total in sorted(totals.items()):
            unit = CHANNEL_UNITS.get(channel)
            if total is not None and unit == "kWh":
                kwh.add_metric([channel, year], total)
            elif total is not None and unit == "m3":
                m3.add_metric([channel, year], total)
            gap.add_metric([channel, year], gaps.get(channel, 0))
        yield from (kwh, m3, gap)
        erf = _g("bitten_energy_erf_ratio", "energy reuse factor: reused heat / facility energy", ["year"])
        pue = _g("bitten_energy_pue_ratio", "power usage effectiveness: facility / IT energy", ["year"])
        e_dc, e_it, e_reuse = totals.get("facility_energy"), totals.get("it_energy"), totals.get("reused_heat")
        if e_dc and e_reuse is not None:
            erf.add_metric([year], e_reuse / e_dc)
        if e_dc and e_it:
            pue.add_metric([year], e_dc / e_it)
        yield from (erf, pue)
