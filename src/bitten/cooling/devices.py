"""Cooling device types: how the agent reads a kind of device, what it makes of a reading, what goes into the ledger
and the metrics. One class per type; the agent, its exporter and `bitten-cooling check` know devices only through
``DEVICE_TYPES``.

A new device type is one class here (``DeviceType``) plus its schema section (bitten.site.model's Cooling and
bitten.cooling.config's AgentConfig, built in ``config.build``). Many devices need no new type at all:

- a rear-door heat exchanger or an immersion unit with Redfish: a ``cdus`` entry with ``equipment:
  HeatExchangers`` or ``ImmersionUnits`` (the same DMTF CoolingUnit schema under another collection);
- a PLC or controller speaking Modbus (a heat-reuse module, a Danfoss ECL): a ``meters`` entry and its register
  map, which is configuration, never code.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from bitten.cooling.ledger import Kind
from bitten.cooling.modbus import MeterReading, ModbusMeter
from bitten.cooling.physics import PhysicsError, Properties, coolant_properties, divergence, heat_kw
from bitten.cooling.redfish import LEAK_STATES, CduReading, RedfishCdu
from bitten.site.model import COUNTER_QUANTITIES, UNITS, Coolant, Plausibility

if TYPE_CHECKING:
    from bitten.cooling.config import AgentConfig
    from bitten.cooling.status import AgentStatus

log = logging.getLogger("bitten.cooling.devices")

P = "bitten_cooling_"
KW = 1000.0  # W per kW
LPM = 1 / 60000.0  # m3/s per L/min


class Reader(Protocol):
    """A device's client: one reading per call, within its read deadline; ``close`` ends its session."""

    def read(self) -> Any: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Sample:
    """One ledger sample: (channel, source label, kind, time, value, the counter's maximum rate per second)."""

    channel: str
    source: str
    kind: Kind
    timestamp: float
    value: float
    max_rate: float | None = None


def _g(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


class DeviceType(ABC):
    #: the device's kind (DeviceState.kind, the ``kind`` label of the device metrics)
    kind: ClassVar[str]
    #: the AgentConfig field that lists devices of this type
    section: ClassVar[str]

    def entries(self, config: AgentConfig) -> dict[str, Any]:
        return dict(getattr(config, self.section))

    @abstractmethod
    def reader(self, name: str, entry: Any, config: AgentConfig, timeout: float) -> Reader: ...

    @abstractmethod
    def view(self, name: str, reading: Any, config: AgentConfig) -> Any:
        """An immutable view of a reading: derived values (heat) beside what the device reported."""

    def garbage(self, reading: Any) -> int:
        """Values of a reading that were there but not usable (not a number, not finite, implausible)."""
        return 0

    def loop_reading(self, view: Any) -> CduReading | None:
        """The reading a cooling loop's alarms are evaluated on, for a device that cools loops."""
        return None

    def samples(self, name: str, view: Any, config: AgentConfig) -> list[Sample]:
        return []

    @abstractmethod
    def metrics(self, views: dict[str, Any], status: AgentStatus) -> Iterator[Metric]: ...

    @abstractmethod
    def describe(self, view: Any) -> str:
        """One line for `bitten-cooling check`."""


# --- Redfish ThermalEquipment CoolingUnits --------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectorView:
    side: str
    id: str
    supply_c: float | None
    return_c: float | None
    delta_k: float | None
    flow_lpm: float | None
    heat_computed_kw: float | None
    heat_reported_kw: float | None
    divergence: float | None
    setpoint_c: float | None
    props: Properties | None


@dataclass(frozen=True)
class CduView:
    reading: CduReading
    connectors: list[ConnectorView] = field(default_factory=list)


def cdu_view(reading: CduReading, coolant: Coolant | None, limits: Plausibility | None = None) -> CduView:
    """Heat per connector from rho*cp*flow*dT (the coolant's own properties) beside what the CDU reports."""
    connectors = []
    for conn in reading.connectors:
        delta = None
        if conn.supply_c is not None and conn.return_c is not None:
            delta = conn.return_c - conn.supply_c
        elif conn.delta_c_reported is not None:
            delta = conn.delta_c_reported
        props = computed = None
        if delta is not None and conn.flow_lpm is not None:
            known = [t for t in (conn.supply_c, conn.return_c) if t is not None]
            mean = sum(known) / len(known) if known else 30.0
            # the rack side carries the CDU's coolant; the facility side is the plant's (water unless configured)
            try:
                if conn.side == "secondary":
                    props = coolant_properties(coolant, reading.density_kg_m3, reading.specific_heat_kj_kg_k, mean)
                else:
                    props = coolant_properties(None, None, None, mean)
                computed = heat_kw(props, conn.flow_lpm, delta)
                if not math.isfinite(computed):
                    computed = None
            except PhysicsError as exc:
                log.warning("%s: %s", reading.cdu, exc)
        connectors.append(ConnectorView(
            conn.side, conn.id, conn.supply_c, conn.return_c, delta, conn.flow_lpm, computed, conn.heat_reported_kw,
            divergence(computed, conn.heat_reported_kw),
            conn.supply_setpoint.set_point if conn.supply_setpoint else None, props))
    return CduView(reading, connectors)


class CoolingUnits(DeviceType):
    """CDUs, rear-door heat exchangers and immersion units: DMTF CoolingUnits over Redfish (``cdus``)."""

    kind = "cdu"
    section = "cdus"

    def reader(self, name: str, entry: Any, config: AgentConfig, timeout: float) -> RedfishCdu:
        return RedfishCdu(name, entry.url, entry.cdu_id, username=entry.username, password=entry.password,
                          auth=entry.auth, ca_file=entry.ca_file, timeout=timeout, deadline_s=config.read_deadline_s,
                          max_bytes=config.max_response_bytes, plausibility=config.plausibility,
                          collection=entry.equipment)

    def view(self, name: str, reading: Any, config: AgentConfig) -> CduView:
        coolant = config.cdus[name].coolant
        return cdu_view(reading, config.coolants.get(coolant) if coolant else None, config.plausibility)

    def garbage(self, reading: Any) -> int:
        return len(reading.garbage)

    def loop_reading(self, view: Any) -> CduReading:
        return view.reading  # type: ignore[no-any-return]

    def samples(self, name: str, view: Any, config: AgentConfig) -> list[Sample]:
        out = []
        for channel, sources in config.ledger.channels().items():
            for src in sources:
                if src.cdu != name:
                    continue
                conn = next((c for c in view.connectors if c.side == src.side), None)
                value = None if conn is None else (
                    conn.heat_computed_kw if src.method == "computed" else conn.heat_reported_kw)
                if value is not None:
                    out.append(Sample(channel, src.label, "power", view.reading.timestamp, value))
        return out

    def metrics(self, views: dict[str, Any], status: AgentStatus) -> Iterator[Metric]:
        lab = ["cdu", "side", "connector"]
        fams = {key: _g(P + key, doc, lab) for key, doc in (
            ("supply_temperature_celsius", "coolant supply temperature"),
            ("return_temperature_celsius", "coolant return temperature"),
            ("delta_temperature_celsius", "return minus supply temperature (a difference)"),
            ("flow_cubic_meters_per_second", "coolant flow"),
            ("heat_computed_watts", "heat from rho * cp * flow * delta-T with the coolant's properties"),
            ("heat_reported_watts", "heat removed as the CDU reports it (HeatRemovedkW)"),
            ("heat_divergence_ratio", "(computed - reported) / reported heat"),
            ("heat_divergence_exceeded", "1 if |divergence| exceeds divergence_warn"),
            ("supply_temperature_setpoint_celsius", "supply temperature set point"),
        )}
        rho = _g(P + "coolant_density_grams_per_cubic_meter", "coolant density used", ["cdu", "side", "source"])
        cp = _g(P + "coolant_specific_heat_joules_per_gram_celsius", "coolant specific heat used",
                ["cdu", "side", "source"])
        healthy = _g(P + "cdu_healthy", "1 if the CDU's Status.Health is OK", ["cdu"])
        pump_failed = _g(P + "pump_failed", "1 if the pump reports a failure", ["cdu", "pump"])
        pump_speed = _g(P + "pump_speed_ratio", "pump speed (0-1)", ["cdu", "pump"])
        filt = _g(P + "filter_healthy", "1 if the filter's health is OK", ["cdu", "filter"])
        leak = _g(P + "leak_detected", "1 if the leak detector reports a leak (absent while its state is unknown)",
                  ["cdu", "detector"])
        for name, view in sorted(views.items()):
            r = view.reading
            if r.health is not None:
                healthy.add_metric([name], 1.0 if r.health == "OK" else 0.0)
            for c in view.connectors:
                labels = [name, c.side, c.id]
                for key, value in (("supply_temperature_celsius", c.supply_c),
                                   ("return_temperature_celsius", c.return_c),
                                   ("delta_temperature_celsius", c.delta_k),
                                   ("flow_cubic_meters_per_second", _scaled(c.flow_lpm, LPM)),
                                   ("heat_computed_watts", _scaled(c.heat_computed_kw, KW)),
                                   ("heat_reported_watts", _scaled(c.heat_reported_kw, KW)),
                                   ("heat_divergence_ratio", c.divergence),
                                   ("supply_temperature_setpoint_celsius", c.setpoint_c)):
                    if value is not None:
                        fams[key].add_metric(labels, value)
                if c.divergence is not None:
                    exceeded = abs(c.divergence) > status.divergence_warn
                    fams["heat_divergence_exceeded"].add_metric(labels, 1.0 if exceeded else 0.0)
                if c.props is not None:
                    source = c.props.source.split("@")[0]
                    rho.add_metric([name, c.side, source], c.props.density_kg_m3 * 1000.0)
                    cp.add_metric([name, c.side, source], c.props.specific_heat_kj_kg_k)
            for p in r.pumps:
                if p.known:
                    pump_failed.add_metric([name, p.id], 1.0 if p.failed else 0.0)
                if p.speed_percent is not None:
                    pump_speed.add_metric([name, p.id], p.speed_percent / 100.0)
            for f in r.filters:
                filt.add_metric([name, f.id], 1.0 if f.health in ("OK", None) else 0.0)
            for d in r.leak_detectors:
                if d.state is not None:
                    leak.add_metric([name, d.id], 1.0 if d.state in LEAK_STATES else 0.0)
        yield from fams.values()
        yield from (rho, cp, healthy, pump_failed, pump_speed, filt, leak)

    def describe(self, view: Any) -> str:
        parts = [f"{x.side}: {x.flow_lpm} L/min, dT {x.delta_k} K, heat "
                 f"{x.heat_computed_kw and round(x.heat_computed_kw, 2)} kW computed / {x.heat_reported_kw} kW "
                 "reported" for x in view.connectors]
        unknown = f"; unknown: {', '.join(sorted(view.reading.problems))}" if view.reading.problems else ""
        return f"health {view.reading.health}; " + "; ".join(parts) + unknown


# --- Modbus TCP meters and controllers ---------------------------------------------------------------------


@dataclass(frozen=True)
class MeterView:
    reading: MeterReading
    heat_computed_kw: float | None = None
    heat_reported_kw: float | None = None
    divergence: float | None = None


def meter_view(reading: MeterReading) -> MeterView:
    """A heat meter's own heat beside the heat its flow and temperatures imply (district heating water)."""
    reported = reading.by_quantity("heat_power")
    supply, ret, flow = (reading.by_quantity("supply_temperature"), reading.by_quantity("return_temperature"),
                         reading.by_quantity("flow"))
    if supply is not None and ret is not None and flow is not None:
        try:
            props = coolant_properties(None, None, None, (supply + ret) / 2)
            computed = heat_kw(props, flow, abs(supply - ret))
            return MeterView(reading, computed, reported, divergence(computed, reported))
        except PhysicsError:
            pass
    return MeterView(reading, heat_reported_kw=reported)


#: a register's dimension -> (metric name after bitten_cooling_meter_, factor from the canonical unit, counter?)
METER_METRICS: dict[str, tuple[str, float, bool]] = {
    "temperature": ("temperature_celsius", 1.0, False),
    "temperature_difference": ("temperature_difference_celsius", 1.0, False),
    "flow": ("flow_cubic_meters_per_second", LPM, False),
    "power": ("power_watts", KW, False),
    "energy": ("energy_joules", 3.6e6, True),
    "volume": ("volume_cubic_meters", 1.0, True),
    "pressure": ("pressure_pascals", 1000.0, False),
    "percent": ("ratio", 0.01, False),
    "dimensionless": ("value", 1.0, False),
}


class ModbusDevices(DeviceType):
    """Heat meters, electricity and water meters, controllers and PLCs: Modbus TCP through a register map
    (``modbus``)."""

    kind = "modbus"
    section = "modbus"

    def reader(self, name: str, entry: Any, config: AgentConfig, timeout: float) -> ModbusMeter:
        return ModbusMeter(name, entry, config.register_maps[entry.register_map], timeout=timeout,
                           plausibility=config.plausibility, deadline_s=config.read_deadline_s)

    def view(self, name: str, reading: Any, config: AgentConfig) -> MeterView:
        return meter_view(reading)

    def garbage(self, reading: Any) -> int:
        return sum(1 for p in reading.points.values() if p.problem and "implausible" in p.problem)

    @staticmethod
    def max_rate(config: AgentConfig, device: str, quantity: str) -> float:
        """The most a counter can grow per second (kWh/s, m3/s): the meter's maximum power, or the plausible one."""
        limits = config.plausibility
        if quantity == "water_volume":
            return limits.flow_lpm.max / 60000.0
        dev = config.modbus.get(device)
        kw = dev.max_power_kw if dev is not None and dev.max_power_kw else limits.power_kw.max
        return kw / 3600.0

    def samples(self, name: str, view: Any, config: AgentConfig) -> list[Sample]:
        out = []
        for channel, sources in config.ledger.channels().items():
            for src in sources:
                if src.device != name or src.register_name is None:
                    continue
                point = view.reading.points.get(src.register_name)
                if point is None or point.value is None:
                    continue
                quantity = point.quantity or ""
                kind: Kind = "counter" if quantity in COUNTER_QUANTITIES else (
                    "level" if channel == "waste_heat_temperature" else "power")
                rate = self.max_rate(config, name, quantity) if kind == "counter" else None
                out.append(Sample(channel, src.label, kind, view.reading.timestamp, point.value, rate))
        return out

    def metrics(self, views: dict[str, Any], status: AgentStatus) -> Iterator[Metric]:
        labels = ["meter", "register", "quantity"]
        fams: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        for metric, _factor, counter in METER_METRICS.values():
            name = P + "meter_" + metric
            doc = f"a Modbus register in its base unit ({metric.rsplit('_', 1)[-1]})"
            fams[metric] = CounterMetricFamily(name, doc, labels=labels) if counter else _g(name, doc, labels)
        computed = _g(P + "meter_heat_computed_watts", "heat from the meter's flow and temperatures", ["meter"])
        reported = _g(P + "meter_heat_reported_watts", "heat power the meter reports", ["meter"])
        div = _g(P + "meter_heat_divergence_ratio", "(computed - reported) / reported heat", ["meter"])
        for name, view in sorted(views.items()):
            for reg, point in view.reading.points.items():
                if point.value is None or point.unit not in UNITS:
                    continue
                metric, factor, _counter = METER_METRICS[UNITS[point.unit][0]]
                fams[metric].add_metric([name, reg, point.quantity or ""], point.value * factor)
            for fam, v in ((computed, _scaled(view.heat_computed_kw, KW)),
                           (reported, _scaled(view.heat_reported_kw, KW)), (div, view.divergence)):
                if v is not None:
                    fam.add_metric([name], v)
        yield from fams.values()
        yield from (computed, reported, div)

    def describe(self, view: Any) -> str:
        return ", ".join(f"{k}={p.value:g} {p.unit}" if p.value is not None else f"{k}=unknown ({p.problem})"
                         for k, p in view.reading.points.items())


#: every device type the agent knows, in the order their metrics are exported
DEVICE_TYPES: tuple[DeviceType, ...] = (CoolingUnits(), ModbusDevices())
