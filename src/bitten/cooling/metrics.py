"""Prometheus metrics of the cooling agent (prometheus-client), built per scrape from the agent's read-only status
(:meth:`bitten.cooling.agent.Agent.status`).

Prometheus conventions (https://prometheus.io/docs/practices/naming/): base units (seconds, celsius, watts, joules,
grams, cubic meters, pascals, ratios 0-1), one unit per metric, accumulating quantities are counters ending in
``_total``, no label whose values grow without bound. Energy per period comes from the counters
(``increase(bitten_energy_ledger_joules_total{channel="reused_heat"}[1y])``), not from gauges labelled by year.

======================================================================  ====================================
bitten_cooling_device_up{device,kind}                                   1 if the last poll succeeded
bitten_cooling_device_stale{device,kind}                                1 if no good reading for stale_after_s
bitten_cooling_device_last_success_timestamp_seconds{device,kind}       Unix time of the last good reading
bitten_cooling_device_reading_age_seconds{device,kind}                  seconds since the last good reading
bitten_cooling_device_consecutive_failures{device,kind}                 failed polls in a row (backoff grows)
bitten_cooling_device_poll_errors_total{device,kind}                    failed polls (counter)
bitten_cooling_device_garbage_fields_total{device}                      values not usable: not a number, not
                                                                        finite, implausible
bitten_cooling_device_poll_duration_seconds{device,kind}                duration of the last poll
bitten_cooling_supply_temperature_celsius{cdu,side,connector}           coolant supply temperature
bitten_cooling_return_temperature_celsius{cdu,side,connector}           coolant return temperature
bitten_cooling_delta_temperature_celsius{cdu,side,connector}            return - supply (a difference)
bitten_cooling_flow_cubic_meters_per_second{cdu,side,connector}         coolant flow
bitten_cooling_heat_computed_watts{cdu,side,connector}                  rho * cp * flow * delta-T
bitten_cooling_heat_reported_watts{cdu,side,connector}                  HeatRemovedkW as the CDU reports it
bitten_cooling_heat_divergence_ratio{cdu,side,connector}                (computed - reported) / reported
bitten_cooling_heat_divergence_exceeded{cdu,side,connector}             1 if |divergence| > divergence_warn
bitten_cooling_coolant_density_grams_per_cubic_meter{cdu,side,source}   density used (config, cdu or table)
bitten_cooling_coolant_specific_heat_joules_per_gram_celsius{...}       specific heat used (same labels)
bitten_cooling_supply_temperature_setpoint_celsius{cdu,side,connector}  the CDU's supply set point
bitten_cooling_cdu_healthy{cdu}                                         1 if Status.Health is OK
bitten_cooling_pump_failed{cdu,pump}                                    1 if the pump reports a failure
bitten_cooling_pump_speed_ratio{cdu,pump}                               pump speed, 0-1
bitten_cooling_filter_healthy{cdu,filter}                               1 if the filter's health is OK
bitten_cooling_leak_detected{cdu,detector}                              1 if the detector reports a leak
                                                                        (absent while its state is unknown)
bitten_cooling_meter_<quantity>_<unit>{meter,register,quantity}         a Modbus register in its base unit:
                                                                        temperature_celsius,
                                                                        temperature_difference_celsius,
                                                                        flow_cubic_meters_per_second,
                                                                        power_watts, energy_joules_total,
                                                                        volume_cubic_meters_total,
                                                                        pressure_pascals, ratio, value
bitten_cooling_meter_heat_computed_watts{meter}                         heat from the meter's flow and temps
bitten_cooling_meter_heat_reported_watts{meter}                         heat power the meter reports
bitten_cooling_meter_heat_divergence_ratio{meter}                       (computed - reported) / reported
bitten_cooling_alarm_active{loop,kind}                                  1 while the alarm is active
bitten_cooling_alarm_since_timestamp_seconds{loop,kind}                 when the active alarm was raised
bitten_cooling_alarm_input_unknown{loop,kind}                           1 while the kind's inputs are unknown
                                                                        (its alarm keeps its state)
bitten_cooling_actions_total{action,result}                             drain/resume/jobs/power/cap actions
bitten_cooling_events_total                                             EventService events received
bitten_cooling_store_available{store}                                   1 while the ledger / state database
                                                                        works (0: accounting degraded)
bitten_cooling_store_errors_total{store}                                failed ledger / state operations
bitten_energy_ledger_joules_total{channel}                              energy in the ledger since it began
bitten_energy_ledger_cubic_meters_total{channel}                        water in the ledger since it began
bitten_energy_ledger_gaps_total{channel}                                gaps recorded in the ledger
bitten_energy_erf_ratio                                                 reused heat / facility energy, this
                                                                        calendar year (UTC) so far
bitten_energy_pue_ratio                                                 facility / IT energy, same period
======================================================================  ====================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bitten.cooling.devices import DEVICE_TYPES
from bitten.cooling.ledger import CHANNEL_UNITS
from bitten.cooling.status import AgentStatus
from bitten.site.model import ALARM_KINDS

P = "bitten_cooling_"
KWH = 3.6e6  # J per kWh


def _g(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


class AgentCollector(Collector):
    """Collects from a status source (``Agent.status``); reads nothing else of the agent."""

    def __init__(self, status: Callable[[], AgentStatus]) -> None:
        self.status = status

    def collect(self) -> Iterator[Metric]:
        st = self.status()
        yield from self._devices(st)
        for device_type in DEVICE_TYPES:  # each type's own readings (bitten.cooling.devices)
            yield from device_type.metrics(st.views.get(device_type.kind, {}), st)
        yield from self._alarms(st)
        yield from self._stores(st)
        yield from self._energy(st)

    def _devices(self, st: AgentStatus) -> Iterator[Metric]:
        up = _g(P + "device_up", "1 if the last poll succeeded", ["device", "kind"])
        stale = _g(P + "device_stale", "1 if no good reading for stale_after_s", ["device", "kind"])
        last = _g(P + "device_last_success_timestamp_seconds", "Unix time of the last good reading",
                  ["device", "kind"])
        age = _g(P + "device_reading_age_seconds", "seconds since the last good reading", ["device", "kind"])
        fails = _g(P + "device_consecutive_failures", "failed polls in a row", ["device", "kind"])
        errors = CounterMetricFamily(P + "device_poll_errors", "failed polls", labels=["device", "kind"])
        garbage = CounterMetricFamily(P + "device_garbage_fields", "values that were not usable: not a number, not "
                                      "finite or implausible", labels=["device"])
        duration = _g(P + "device_poll_duration_seconds", "duration of the last poll", ["device", "kind"])
        for d in st.devices:
            labels = [d.name, d.kind]
            up.add_metric(labels, 1.0 if d.up else 0.0)
            stale.add_metric(labels, 1.0 if d.stale else 0.0)
            if d.last_ok is not None:
                last.add_metric(labels, d.last_ok)
                age.add_metric(labels, st.time - d.last_ok)
            fails.add_metric(labels, d.failures)
            errors.add_metric(labels, d.errors_total)
            garbage.add_metric([d.name], d.garbage_total)
            duration.add_metric(labels, d.duration_s)
        yield from (up, stale, last, age, fails, errors, garbage, duration)

    def _alarms(self, st: AgentStatus) -> Iterator[Metric]:
        alarm = _g(P + "alarm_active", "1 while the alarm is active", ["loop", "kind"])
        since = _g(P + "alarm_since_timestamp_seconds", "when the active alarm was raised", ["loop", "kind"])
        unknown = _g(P + "alarm_input_unknown", "1 while the alarm kind's inputs are unknown (it keeps its state)",
                     ["loop", "kind"])
        for loop in st.loops:
            for kind in ALARM_KINDS:
                alarm.add_metric([loop.name, kind], 1.0 if kind in loop.alarms else 0.0)
                if kind in loop.alarms:
                    since.add_metric([loop.name, kind], loop.alarms[kind].since)
                unknown.add_metric([loop.name, kind], 1.0 if kind in loop.unknown else 0.0)
        yield from (alarm, since, unknown)
        counter = CounterMetricFamily(P + "actions", "drain, resume, jobs, power and GPU power actions",
                                      labels=["action", "result"])
        for (action, result), count in sorted(st.actions.items()):
            counter.add_metric([action, result], count)
        yield counter
        events = CounterMetricFamily(P + "events", "EventService events received")
        events.add_metric([], st.events_total)
        yield events

    def _stores(self, st: AgentStatus) -> Iterator[Metric]:
        available = _g(P + "store_available", "1 while the store works (0: accounting degraded, alarms go on)",
                       ["store"])
        errors = CounterMetricFamily(P + "store_errors", "failed operations on the store", labels=["store"])
        for s in st.stores:
            available.add_metric([s.name], 1.0 if s.available else 0.0)
            errors.add_metric([s.name], s.errors_total)
        yield from (available, errors)

    def _energy(self, st: AgentStatus) -> Iterator[Metric]:
        joules = CounterMetricFamily("bitten_energy_ledger_joules", "energy in the ledger since it began",
                                     labels=["channel"])
        water = CounterMetricFamily("bitten_energy_ledger_cubic_meters", "water in the ledger since it began",
                                    labels=["channel"])
        gaps = CounterMetricFamily("bitten_energy_ledger_gaps", "gaps recorded in the ledger", labels=["channel"])
        for channel, unit in CHANNEL_UNITS.items():
            total = st.ledger_totals.get(channel)
            if unit == "kWh" and total is not None:
                joules.add_metric([channel], total * KWH)
            elif unit == "m3" and total is not None:
                water.add_metric([channel], total)
        for channel, count in sorted(st.ledger_gaps.items()):
            gaps.add_metric([channel], count)
        yield from (joules, water, gaps)
        erf = _g("bitten_energy_erf_ratio", "energy reuse factor: reused heat / facility energy, this calendar "
                 "year (UTC) so far", [])
        pue = _g("bitten_energy_pue_ratio", "power usage effectiveness: facility / IT energy, this calendar year "
                 "(UTC) so far", [])
        totals = st.year_totals
        e_dc, e_it, e_reuse = totals.get("facility_energy"), totals.get("it_energy"), totals.get("reused_heat")
        if e_dc and e_reuse is not None:
            erf.add_metric([], e_reuse / e_dc)
        if e_dc and e_it:
            pue.add_metric([], e_dc / e_it)
        yield from (erf, pue)
