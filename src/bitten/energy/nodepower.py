"""Node power, energy and node-level heat from Redfish, into the ledger as channels with provenance.

What is read (DMTF Redfish 2025.4, per the CSDL):

- ``Chassis/{id}/EnvironmentMetrics``: ``PowerWatts`` (a Sensor excerpt, Power: ``Reading`` W), ``EnergykWh``
  (excerpt EnergykWh: ``Reading``, ``LifetimeReading`` -- never reset --, ``SensorResetTime``) or
  ``EnergyJoules`` (``Reading`` J). Without PowerWatts, the sum of ``PowerSubsystem/PowerSupplies/{n}/Metrics``
  ``InputPowerWatts``.
- ``Chassis/{id}/ThermalSubsystem/CoolantConnectors/{n}`` (CoolantConnector): ``FlowLitersPerMinute``,
  ``SupplyTemperatureCelsius``, ``ReturnTemperatureCelsius``, ``HeatRemovedkW`` (Sensor excerpts) where the node
  reports them.
- ``PowerEquipment/RackPDUs/{id}``: ``Metrics`` (PowerDistributionMetrics: ``PowerWatts``, ``EnergykWh``) and
  ``Outlets/{n}`` (``PowerWatts``, ``EnergykWh``), each outlet mapped to the node it feeds by configuration.

The same rules as for the CDUs: a field that is missing reads as None; a field that is not a finite number or is
outside its plausible range is garbage (counted, not used); a resource that is not what it should be fails the poll;
a node without a good reading for ``stale_after_s`` is stale (alarm, nothing recorded). One slow or broken BMC
never delays the others (a pool, a timeout per request). The ledger gets ``node_energy`` per node (the energy
counter's difference when the BMC has one, else power integrated) and ``node_heat`` (the connectors' HeatRemovedkW),
each with its provenance: which resource and property, PDU outlet or BMC.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from bitten.cooling.ledger import Ledger
from bitten.energy.polling import PollState, alarms, settle

log = logging.getLogger("bitten.energy.nodepower")

#: plausible ranges (canonical units) of coolant readings
COOLANT_RANGES = {"flow_lpm": (0.0, 2000.0), "supply_c": (0.0, 100.0), "return_c": (0.0, 100.0)}


class Resource(Protocol):
    """What a reader needs from a Redfish client: GET a path as JSON (bitten's Connection answers it)."""

    def get_json(self, path: str, optional: bool = False) -> dict[str, Any]: ...


class ReadingError(RuntimeError):
    """The BMC answered something that is not the resource it should be."""


@dataclass
class Sample:
    value: float
    #: resource#property the value came from
    provenance: str


@dataclass
class Coolant:
    id: str
    flow_lpm: float | None = None
    supply_c: float | None = None
    return_c: float | None = None
    heat_kw: float | None = None


@dataclass
class NodeReading:
    node: str
    timestamp: float
    power_w: Sample | None = None
    #: an energy counter in kWh (LifetimeReading where the BMC has it: it is never reset)
    energy_kwh: Sample | None = None
    reset_time: str | None = None
    coolant: list[Coolant] = field(default_factory=list)
    garbage: list[str] = field(default_factory=list)

    @property
    def heat_kw(self) -> Sample | None:
        values = [c.heat_kw for c in self.coolant]
        if not values or any(v is None for v in values):
            return None
        return Sample(sum(v for v in values if v is not None),
                      f"{len(values)} CoolantConnector(s)#HeatRemovedkW")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def excerpt(doc: dict[str, Any], key: str, garbage: list[str], low: float, high: float,
            prop: str = "Reading") -> float | None:
    """A Sensor excerpt's property (``{"Reading": ..}``; older schemas give a bare number) if plausible."""
    raw = doc.get(key)
    if raw is None:
        return None
    value = raw.get(prop) if isinstance(raw, dict) else raw if prop == "Reading" else None
    if value is None:
        return None
    number = _number(value)
    if number is None or not low <= number <= high:
        garbage.append(f"{key}.{prop}={value!r}")
        return None
    return number


def _link(doc: dict[str, Any], key: str) -> str | None:
    link = doc.get(key)
    if isinstance(link, dict) and isinstance(link.get("@odata.id"), str):
        return str(link["@odata.id"])
    return None


def _members(conn: Resource, path: str | None) -> list[dict[str, Any]]:
    if path is None:
        return []
    coll = conn.get_json(path, optional=True)
    out = []
    for member in coll.get("Members", []) if isinstance(coll.get("Members"), list) else []:
        if isinstance(member, dict) and isinstance(member.get("@odata.id"), str):
            out.append(conn.get_json(member["@odata.id"], optional=True))
    return out


def read_node(conn: Resource, node: str, chassis_id: str, max_w: float, clock: Callable[[], float] = time.time) \
        -> NodeReading:
    base = f"/redfish/v1/Chassis/{chassis_id}"
    chassis = conn.get_json(base)
    if "Chassis" not in str(chassis.get("@odata.type", "")):
        raise ReadingError(f"{node}: {base} is not a Chassis (@odata.type {chassis.get('@odata.type')!r})")
    out = NodeReading(node, clock())
    env_path = _link(chassis, "EnvironmentMetrics")
    env = conn.get_json(env_path, optional=True) if env_path else {}
    if env:
        watts = excerpt(env, "PowerWatts", out.garbage, 0.0, max_w)
        if watts is not None:
            out.power_w = Sample(watts, f"{env_path}#PowerWatts")
        lifetime = excerpt(env, "EnergykWh", out.garbage, 0.0, 1e9, "LifetimeReading")
        kwh = lifetime if lifetime is not None else excerpt(env, "EnergykWh", out.garbage, 0.0, 1e9)
        if kwh is not None:
            prop = "LifetimeReading" if lifetime is not None else "Reading"
            out.energy_kwh = Sample(kwh, f"{env_path}#EnergykWh.{prop}")
            reset = env["EnergykWh"].get("SensorResetTime") if isinstance(env.get("EnergykWh"), dict) else None
            out.reset_time = reset if isinstance(reset, str) else None
        else:
            joules = excerpt(env, "EnergyJoules", out.garbage, 0.0, 3.6e15)
            if joules is not None:
                out.energy_kwh = Sample(joules / 3.6e6, f"{env_path}#EnergyJoules")
    if out.power_w is None:
        supplies = _members(conn, _link(conn.get_json(_link(chassis, "PowerSubsystem") or "", optional=True)
                                        if _link(chassis, "PowerSubsystem") else {}, "PowerSupplies"))
        inputs = []
        for psu in supplies:
            metrics = conn.get_json(_link(psu, "Metrics") or "", optional=True) if _link(psu, "Metrics") else {}
            value = excerpt(metrics, "InputPowerWatts", out.garbage, 0.0, max_w)
            if value is not None:
                inputs.append(value)
        if inputs and len(inputs) == len(supplies):
            out.power_w = Sample(sum(inputs), f"{base}/PowerSubsystem: sum of {len(inputs)} "
                                 "PowerSupplyMetrics#InputPowerWatts")
    thermal_path = _link(chassis, "ThermalSubsystem")
    if thermal_path:
        thermal = conn.get_json(thermal_path, optional=True)
        for doc in _members(conn, _link(thermal, "CoolantConnectors")):
            g = out.garbage
            out.coolant.append(Coolant(
                str(doc.get("Id", "?")),
                excerpt(doc, "FlowLitersPerMinute", g, *COOLANT_RANGES["flow_lpm"]),
                excerpt(doc, "SupplyTemperatureCelsius", g, *COOLANT_RANGES["supply_c"]),
                excerpt(doc, "ReturnTemperatureCelsius", g, *COOLANT_RANGES["return_c"]),
                excerpt(doc, "HeatRemovedkW", g, 0.0, max_w / 1000.0)))
    return out


@dataclass
class PduReading:
    pdu: str
    timestamp: float
    power_w: float | None = None
    energy_kwh: float | None = None
    outlets: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)  # id -> (W, kWh)
    garbage: list[str] = field(default_factory=list)


def read_pdu(conn: Resource, name: str, pdu_id: str, clock: Callable[[], float] = time.time) -> PduReading:
    base = f"/redfish/v1/PowerEquipment/RackPDUs/{pdu_id}"
    doc = conn.get_json(base)
    if "PowerDistribution" not in str(doc.get("@odata.type", "")):
        raise ReadingError(f"{name}: {base} is not a PowerDistribution ({doc.get('@odata.type')!r})")
    out = PduReading(name, clock())
    metrics = conn.get_json(_link(doc, "Metrics") or "", optional=True) if _link(doc, "Metrics") else {}
    out.power_w = excerpt(metrics, "PowerWatts", out.garbage, 0.0, 1e6)
    out.energy_kwh = excerpt(metrics, "EnergykWh", out.garbage, 0.0, 1e10)
    for outlet in _members(conn, _link(doc, "Outlets")):
        out.outlets[str(outlet.get("Id", "?"))] = (excerpt(outlet, "PowerWatts", out.garbage, 0.0, 1e5),
                                                   excerpt(outlet, "EnergykWh", out.garbage, 0.0, 1e10))
    return out


#: a node's poll state (bitten.energy.polling)
NodeState = PollState[NodeReading]


class NodePowerPoller:
    """Poll every node's BMC in parallel, check, record into the ledger; per-node state for metrics and alarms."""

    def __init__(self, connections: dict[str, Callable[[], Resource]], ledger: Ledger, *, chassis_id: str = "1",
                 stale_after_s: float = 120.0, max_w: dict[str, float] | None = None,
                 pdus: dict[str, tuple[Callable[[], Resource], str, dict[str, str]]] | None = None,
                 clock: Callable[[], float] = time.time, workers: int = 16) -> None:
        self.connections = connections
        self.ledger = ledger
        self.chassis_id = chassis_id
        self.stale_after_s = stale_after_s
        self.max_w = max_w or {}
        self.pdus = pdus or {}
        self.clock = clock
        self.started = clock()
        self.nodes = {name: NodeState() for name in connections}
        self.pdu_readings: dict[str, PduReading] = {}
        self.pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(connections) + len(self.pdus))),
                                       thread_name_prefix="nodepower")

    def _one(self, node: str) -> tuple[str, NodeReading | None, str]:
        try:
            conn = self.connections[node]()
            return node, read_node(conn, node, self.chassis_id, self.max_w.get(node, 30000.0), self.clock), ""
        except Exception as exc:  # a BMC's failure is that node's, never the loop's
            return node, None, f"{exc.__class__.__name__}: {exc}"[:300]

    def _pdu(self, name: str) -> tuple[str, PduReading | None, str]:
        factory, pdu_id, _ = self.pdus[name]
        try:
            return name, read_pdu(factory(), name, pdu_id, self.clock), ""
        except Exception as exc:
            return name, None, f"{exc.__class__.__name__}: {exc}"[:300]

    def poll(self) -> None:
        results = list(self.pool.map(self._one, sorted(self.connections)))
        pdu_results = list(self.pool.map(self._pdu, sorted(self.pdus)))
        now = self.clock()
        with self.ledger.batch():
            settle(self.nodes, results, now, what="BMC", log=log, garbage=lambda r: len(r.garbage),
                   record=self._record)
            for name, pdu, error in pdu_results:
                if pdu is None:
                    log.warning("PDU %s: poll failed: %s", name, error)
                    continue
                self.pdu_readings[name] = pdu
                for outlet, node in self.pdus[name][2].items():
                    watts, kwh = pdu.outlets.get(outlet, (None, None))
                    source = f"pdu:{name}/{outlet}"
                    if kwh is not None:
                        self.ledger.record("node_energy", source, "counter", pdu.timestamp, kwh)
                        self.ledger.describe("node_energy", source, f"{node}: rack PDU {name} outlet {outlet} "
                                             "EnergykWh", pdu.timestamp)
                    elif watts is not None:
                        self.ledger.record("node_energy", source, "power", pdu.timestamp, watts / 1000)
                        self.ledger.describe("node_energy", source, f"{node}: rack PDU {name} outlet {outlet} "
                                             "PowerWatts", pdu.timestamp)

    def _record(self, r: NodeReading) -> None:
        if r.energy_kwh is not None:
            self.ledger.record("node_energy", r.node, "counter", r.timestamp, r.energy_kwh.value)
            self.ledger.describe("node_energy", r.node, f"BMC {r.energy_kwh.provenance}", r.timestamp)
        elif r.power_w is not None:
            self.ledger.record("node_energy", r.node, "power", r.timestamp, r.power_w.value / 1000)
            self.ledger.describe("node_energy", r.node, f"BMC {r.power_w.provenance}", r.timestamp)
        heat = r.heat_kw
        if heat is not None:
            self.ledger.record("node_heat", r.node, "power", r.timestamp, heat.value)
            self.ledger.describe("node_heat", r.node, f"BMC {heat.provenance}", r.timestamp)

    def alarms(self) -> dict[str, str]:
        return alarms(self.nodes, self.clock(), self.stale_after_s, self.started)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
