"""The lab's cooling plant: a Redfish CDU (ThermalEquipment, with EventService server-sent events) and Modbus TCP
meters (district-heating heat meter, IT and facility electricity meters) whose readings follow a load.

A simulator, not a test double of a protocol detail: its documents follow the DMTF CoolingUnit, CoolantConnector,
Pump, Filter and LeakDetection schemas (as in the DMTF public-cooling-unit mockup), and its meters are served by
pymodbus through the site's own register maps. The physics: IT power P -> cold plates capture ``capture`` of it
into the rack loop; flow follows the load between a minimum and the rated flow; return = supply + Q/(rho cp V);
the facility side carries the heat (minus small losses) to the district-heating meter. ``/sim/...`` (not Redfish)
lets a test or `bitten cooling leak` inject faults: a leak, a failed pump, low flow, a hot supply; and what real
devices do wrong: a sensor reading NaN, null, Infinity, a string or nothing at all (``sensors``), an answer that
drips one byte at a time (``drip_s``), an answer of 100 MiB (``pad_bytes``), links to another origin
(``link_origin``), a session the service forgets.

Like real services it offers ``$expand`` (``.``, ``*`` and ``$levels``, announced in ProtocolFeaturesSupported),
sessions (Links.Sessions, DELETE on logout) and server-sent events.
"""

from __future__ import annotations

import json
import math
import secrets
import subprocess
import threading
import time
from base64 import b64decode
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from bitten.cooling.physics import table_properties
from bitten.lab.httpserve import Server, serve

# --- load -------------------------------------------------------------------------------------------------------


class ConstantLoad:
    def __init__(self, kw: float) -> None:
        self.kw = kw

    def it_power_kw(self) -> float:
        return self.kw


class SineLoad:
    """A daily-ish wave for tests and the bench: base +- amplitude over ``period_s``."""

    def __init__(self, base_kw: float, amplitude_kw: float, period_s: float = 600.0) -> None:
        self.base, self.amplitude, self.period = base_kw, amplitude_kw, period_s

    def it_power_kw(self) -> float:
        return max(0.0, self.base + self.amplitude * math.sin(2 * math.pi * time.time() / self.period))


#: share of a node's peak power by Slurm state (allocated nodes run jobs; idle ones idle)
STATE_LOAD = {"allocated": 0.85, "mixed": 0.55, "completing": 0.5, "idle": 0.25, "drained": 0.1, "draining": 0.5,
              "down": 0.0}


class SlurmLoad:
    """IT power from the lab's Slurm: each node's state (sinfo, run in the controller container through podman)
    times its peak power. Refreshed every ``every_s``; when Slurm cannot be asked, nodes count as idle."""

    def __init__(self, controller: str, peaks_kw: dict[str, float], every_s: float = 15.0,
                 runner: Callable[[list[str]], str] | None = None) -> None:
        self.controller = controller
        self.peaks = peaks_kw
        self.every = every_s
        self.runner = runner or self._podman
        self._value = sum(p * STATE_LOAD["idle"] for p in peaks_kw.values())
        self._at = 0.0
        self.lock = threading.Lock()

    @staticmethod
    def _podman(argv: list[str]) -> str:
        return subprocess.run(argv, capture_output=True, text=True, timeout=20, check=True).stdout

    def it_power_kw(self) -> float:
        with self.lock:
            if time.monotonic() - self._at >= self.every:
                self._at = time.monotonic()
                try:
                    text = self.runner(["podman", "exec", self.controller, "sinfo", "-h", "-N", "-o", "%N %T"])
                    states = dict(line.split()[:2] for line in text.splitlines() if len(line.split()) >= 2)
                    self._value = sum(peak * STATE_LOAD.get(states.get(node, "idle").rstrip("*~#!%$@^-"), 0.25)
                                      for node, peak in self.peaks.items())
                except (OSError, subprocess.SubprocessError, ValueError):
                    self._value = sum(p * STATE_LOAD["idle"] for p in self.peaks.values())
            return self._value


class Load:
    def it_power_kw(self) -> float:  # pragma: no cover - protocol
        raise NotImplementedError


# --- the plant --------------------------------------------------------------------------------------------------


@dataclass
class Faults:
    #: True or "Critical": a critical leak; "Warning": a leak a detector reports as a warning
    leak: bool | str = False
    pump_failed: bool = False
    flow_lpm: float | None = None
    supply_c: float | None = None
    #: sensor -> what it reads instead of its value: any JSON value, or "@nan", "@inf", "@missing" (the property is
    #: absent). Sensors: primary.flow, primary.supply, primary.return, primary.heat, secondary.flow,
    #: secondary.supply, secondary.return, secondary.heat, leak (every DetectorState), pump.1, pump.2
    #: (Status.Health; "@missing" drops Health and State), coolant.density, coolant.specific_heat, conditions
    #: (only "@missing": the CDU's Status.Conditions)
    sensors: dict[str, Any] = field(default_factory=dict)
    #: answer this CDU's documents one byte every drip_s seconds
    drip_s: float | None = None
    #: pad this CDU's document with this many bytes (streamed, never held in memory)
    pad_bytes: int = 0
    #: whether the padded answer declares its Content-Length (False: the body ends when the connection closes)
    pad_declared: bool = True


@dataclass
class PlantState:
    it_kw: float = 0.0
    heat_rack_kw: float = 0.0
    heat_facility_kw: float = 0.0
    flow_lpm: float = 0.0
    supply_c: float = 30.0
    return_c: float = 30.0
    facility_flow_lpm: float = 0.0
    facility_supply_c: float = 25.0
    facility_return_c: float = 25.0
    facility_kw: float = 0.0
    it_kwh: float = 0.0
    facility_kwh: float = 0.0
    heat_kwh: float = 0.0


@dataclass
class Plant:
    """One CDU's loop and what the meters downstream see. Thread-safe; advance() integrates the counters."""

    load: Any
    capture: float = 0.85
    supply_setpoint_c: float = 30.0
    rated_flow_lpm: float = 200.0
    min_flow_lpm: float = 40.0
    #: pumps, controls and heat-pump electricity on top of IT power (PUE - 1)
    overhead: float = 0.12
    coolant_type: str = "PropyleneGlycol"
    additive_percent: float = 25.0
    faults: Faults = field(default_factory=Faults)
    state: PlantState = field(default_factory=PlantState)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _last: float = field(default_factory=time.time)

    def advance(self, now: float | None = None) -> PlantState:
        now = time.time() if now is None else now
        it_kw = self.load.it_power_kw()
        with self.lock:
            dt = max(0.0, now - self._last)
            self._last = now
            s = self.state
            s.it_kwh += (s.it_kw + it_kw) / 2 * dt / 3600
            s.facility_kwh += (s.facility_kw + it_kw * (1 + self.overhead)) / 2 * dt / 3600
            s.heat_kwh += s.heat_facility_kw * dt / 3600
            s.it_kw, s.facility_kw = it_kw, it_kw * (1 + self.overhead)
            share = it_kw / max(1e-6, self.load_peak())
            s.flow_lpm = self.faults.flow_lpm if self.faults.flow_lpm is not None else (
                self.min_flow_lpm + (self.rated_flow_lpm - self.min_flow_lpm) * min(1.0, share))
            if self.faults.pump_failed:
                s.flow_lpm *= 0.55
            s.supply_c = self.faults.supply_c if self.faults.supply_c is not None else self.supply_setpoint_c
            s.heat_rack_kw = it_kw * self.capture
            props = table_properties(self.coolant_type, self.additive_percent, s.supply_c + 5)
            s.return_c = s.supply_c + (s.heat_rack_kw / (props.kw_per_lpm_k * s.flow_lpm) if s.flow_lpm > 0 else 0)
            s.heat_facility_kw = s.heat_rack_kw * 0.98
            s.facility_flow_lpm = max(10.0, s.flow_lpm * 0.9)
            water = table_properties("Water", 0, s.supply_c)
            s.facility_supply_c = s.supply_c - 5
            s.facility_return_c = s.facility_supply_c + s.heat_facility_kw / (water.kw_per_lpm_k * s.facility_flow_lpm)
            return PlantState(**{k: getattr(s, k) for k in PlantState.__dataclass_fields__})

    def load_peak(self) -> float:
        peaks = getattr(self.load, "peaks", None)
        if peaks:
            return float(sum(peaks.values()) * 0.85)
        return float(getattr(self.load, "base", getattr(self.load, "kw", 1.0)) * 1.5) or 1.0


# --- Redfish CDU ------------------------------------------------------------------------------------------------

R = "/redfish/v1"


def _ref(path: str) -> dict[str, str]:
    return {"@odata.id": path}


def _reading(value: float, sensor: str) -> dict[str, Any]:
    return {"Reading": round(value, 2), "DataSourceUri": f"{R}/Chassis/CDU/Sensors/{sensor}"}


MISSING = "@missing"
_TOKENS: dict[str, float] = {"@nan": math.nan, "@inf": math.inf, "@-inf": -math.inf}
#: connector sensor -> its property
_CONNECTOR_SENSORS = {"flow": "FlowLitersPerMinute", "supply": "SupplyTemperatureCelsius",
                      "return": "ReturnTemperatureCelsius", "heat": "HeatRemovedkW"}
#: properties never expanded: references to other resources, not subordinates
_NOT_EXPANDED = frozenset({"Links", "OriginOfCondition", "RelatedItem"})


def _fault_value(value: Any) -> Any:
    return _TOKENS.get(value, value) if isinstance(value, str) else value


def _apply_reading(doc: dict[str, Any], key: str, value: Any) -> None:
    if value == MISSING:
        doc.pop(key, None)
    elif isinstance(doc.get(key), dict):
        doc[key]["Reading"] = _fault_value(value)
    else:
        doc[key] = {"Reading": _fault_value(value)}


def _parse_expand(query: str) -> tuple[str, int] | None:
    """``$expand=.($levels=3)`` -> (".", 3); ``*`` or ``.`` without levels -> 1; None without $expand."""
    values = parse_qs(query, keep_blank_values=True).get("$expand")
    if not values:
        return None
    text = values[0].strip()
    kind, levels = text[:1], 1
    if "$levels=" in text:
        digits = text.split("$levels=", 1)[1].rstrip(")").strip()
        levels = int(digits) if digits.isdigit() else 1
    return (kind, levels) if kind in ".*~" else None


class CduSimulator:
    """``count`` CDUs with ids 1..count on one service (one plant each); server-sent events on changes."""

    def __init__(self, plants: list[Plant], username: str | None = None, password: str | None = None) -> None:
        self.plants = plants
        self.username, self.password = username, password
        self.subscribers: list[tuple[threading.Event, list[dict[str, Any]]]] = []
        self.sub_lock = threading.Lock()
        self.event_id = 0
        self.setpoint_bounds = (20.0, 45.0)
        self.tokens: set[str] = set()
        #: session id -> token
        self.sessions: dict[str, str] = {}
        self.sessions_deleted = 0
        #: offer $expand (announced in the service root's ProtocolFeaturesSupported)
        self.expand = True
        #: the links this service gives point to another origin (scheme://host:port): a hostile or misconfigured
        #: device; the agent must not follow them
        self.link_origin: str | None = None
        #: requests per path (to see what a client fetched)
        self.hits: dict[str, int] = {}
        self.hits_lock = threading.Lock()

    def forget_sessions(self) -> None:
        """The service restarted or expired every session."""
        self.tokens.clear()
        self.sessions.clear()

    # --- events ---
    def emit(self, message_id: str, message: str, origin: str, severity: str = "Critical") -> None:
        with self.sub_lock:
            self.event_id += 1
            event = {"@odata.type": "#Event.v1_7_0.Event", "Id": str(self.event_id), "Name": "CDU event",
                     "Events": [{"EventType": "Alert", "MessageId": f"Environmental.1.2.{message_id}",
                                 "Message": message, "MessageSeverity": severity,
                                 "OriginOfCondition": _ref(origin), "EventTimestamp": time.strftime(
                                     "%Y-%m-%dT%H:%M:%SZ", time.gmtime())}]}
            for flag, queue in self.subscribers:
                queue.append(event)
                flag.set()

    def set_fault(self, cdu: int, **changes: Any) -> dict[str, Any]:
        plant = self.plants[cdu - 1]
        path = f"{R}/ThermalEquipment/CDUs/{cdu}"
        with plant.lock:
            for key, value in changes.items():
                if not hasattr(plant.faults, key):
                    raise KeyError(key)
                setattr(plant.faults, key, value)
            faults = dict(plant.faults.__dict__)
        if changes.get("leak"):
            warning = changes["leak"] == "Warning"
            self.emit("LeakDetectedWarning" if warning else "LeakDetectedCritical",
                      f"A {'warning' if warning else 'critical'} leak was detected by Moisture.",
                      f"{path}/LeakDetection/LeakDetectors/Moisture", severity="Warning" if warning else "Critical")
        if changes.get("pump_failed"):
            self.emit("PumpFailed", "Pump '2' has failed.", f"{path}/Pumps/2")
        if changes.get("flow_lpm") is not None:
            self.emit("FlowRateBelowLowerCriticalThreshold", "Flow below its lower critical threshold.",
                      f"{path}/SecondaryCoolantConnectors/1")
        if changes.get("supply_c") is not None:
            self.emit("TemperatureAboveUpperCriticalThreshold", "Supply temperature above its upper threshold.",
                      f"{path}/SecondaryCoolantConnectors/1")
        if not any(changes.values()):
            self.emit("ResourceUpdated", "A fault was cleared.", path, severity="OK")
        return faults

    # --- documents ---
    def document(self, path: str) -> dict[str, Any] | None:
        path = path.rstrip("/")
        n = len(self.plants)
        if path in (R, ""):
            root: dict[str, Any] = {
                "@odata.type": "#ServiceRoot.v1_20_0.ServiceRoot", "@odata.id": f"{R}/", "Id": "RootService",
                "Name": "bitten CDU simulator", "RedfishVersion": "1.20.0",
                "ThermalEquipment": _ref(f"{R}/ThermalEquipment"), "EventService": _ref(f"{R}/EventService"),
                "SessionService": _ref(f"{R}/SessionService"),
                "Links": {"Sessions": _ref(f"{R}/SessionService/Sessions")}}
            if self.expand:
                root["ProtocolFeaturesSupported"] = {"ExpandQuery": {
                    "ExpandAll": True, "Levels": True, "Links": False, "NoLinks": True, "MaxLevels": 6}}
            return root
        if path == f"{R}/SessionService":
            return {"@odata.type": "#SessionService.v1_1_9.SessionService", "@odata.id": path, "Id": "SessionService",
                    "Name": "Session Service", "ServiceEnabled": True, "SessionTimeout": 600,
                    "Sessions": _ref(f"{path}/Sessions")}
        if path == f"{R}/SessionService/Sessions":
            return _collection(path, "#SessionCollection.SessionCollection",
                               [f"{path}/{sid}" for sid in sorted(self.sessions)])
        if path == f"{R}/ThermalEquipment":
            return {"@odata.type": "#ThermalEquipment.v1_2_0.ThermalEquipment", "@odata.id": path,
                    "Id": "ThermalEquipment", "Name": "Cooling Equipment", "CDUs": _ref(f"{path}/CDUs")}
        if path == f"{R}/ThermalEquipment/CDUs":
            return _collection(path, "#CoolingUnitCollection.CoolingUnitCollection",
                               [f"{path}/{i}" for i in range(1, n + 1)])
        if path == f"{R}/EventService":
            return {"@odata.type": "#EventService.v1_12_0.EventService", "@odata.id": path, "Id": "EventService",
                    "Name": "Event Service", "ServiceEnabled": True, "Status": {"State": "Enabled", "Health": "OK"},
                    "EventTypesForSubscription": ["Alert"], "ServerSentEventUri": f"{path}/SSE"}
        prefix = f"{R}/ThermalEquipment/CDUs/"
        if not path.startswith(prefix):
            return None
        cdu_id, _, rest = path[len(prefix):].partition("/")
        if not cdu_id.isdigit() or not 1 <= int(cdu_id) <= n:
            return None
        plant = self.plants[int(cdu_id) - 1]
        s = plant.advance()
        base = prefix + cdu_id
        doc = self._cdu_document(base, rest, plant, s)
        if doc is not None and plant.faults.sensors:
            self._sensor_faults(rest, doc, plant.faults.sensors)
        return doc

    def cdu_of(self, path: str) -> Plant | None:
        """The plant whose CDU a path belongs to (None for the service's own documents)."""
        prefix = f"{R}/ThermalEquipment/CDUs/"
        if not path.startswith(prefix):
            return None
        cdu_id = path[len(prefix):].split("/")[0]
        return self.plants[int(cdu_id) - 1] if cdu_id.isdigit() and 1 <= int(cdu_id) <= len(self.plants) else None

    @staticmethod
    def _sensor_faults(rest: str, doc: dict[str, Any], sensors: dict[str, Any]) -> None:
        for sensor, value in sensors.items():
            part, _, what = sensor.partition(".")
            if part in ("primary", "secondary") and rest == f"{part.capitalize()}CoolantConnectors/1":
                _apply_reading(doc, _CONNECTOR_SENSORS[what], value)
            elif part == "leak" and rest.startswith("LeakDetection"):
                detectors = [d for g in doc.get("LeakDetectorGroups", []) for d in g.get("Detectors", [])]
                if "DetectorState" in doc:
                    detectors.append(doc)
                for det in detectors:
                    if value == MISSING:
                        det.pop("DetectorState", None)
                    else:
                        det["DetectorState"] = _fault_value(value)
            elif part == "pump" and rest == f"Pumps/{what}":
                if value == MISSING:
                    doc["Status"] = {}
                else:
                    doc["Status"]["Health"] = _fault_value(value)
                    doc["Status"]["State"] = "Enabled"
            elif part == "conditions" and rest == "" and value == MISSING:
                doc["Status"].pop("Conditions", None)
            elif part == "coolant" and rest == "":
                key = {"density": "DensityKgPerCubicMeter", "specific_heat": "SpecificHeatkJoulesPerKgK"}[what]
                if value == MISSING:
                    doc["Coolant"].pop(key, None)
                else:
                    doc["Coolant"][key] = _fault_value(value)

    def expanded(self, doc: dict[str, Any], kind: str, levels: int) -> dict[str, Any]:
        """``doc`` with its subordinate resources in place of their links, ``levels`` deep (``.``: not under
        Links; ``*`` and ``~``: every link, as far as this service has the document)."""
        if levels <= 0:
            return doc
        own = str(doc.get("@odata.id", "")).rstrip("/")

        def walk(value: Any, key: str) -> Any:
            if isinstance(value, dict):
                target = value.get("@odata.id")
                if set(value) == {"@odata.id"} and isinstance(target, str) and key not in _NOT_EXPANDED:
                    sub = target.rstrip("/")
                    if kind != "." or sub.startswith(own + "/"):
                        found = self.document(sub)
                        if found is not None:
                            return self.expanded(found, kind, levels - 1)
                    return value
                if key == "Links" and kind == ".":
                    return value
                return {k: walk(v, k) for k, v in value.items()}
            if isinstance(value, list):
                return [walk(v, key) for v in value]
            return value

        return {k: (walk(v, k) if k != "@odata.id" else v) for k, v in doc.items()}

    def foreign(self, doc: Any, top: bool = True) -> Any:
        """Every link in ``doc`` as an absolute URL on link_origin (the document's own @odata.id stays)."""
        if self.link_origin is None:
            return doc
        if isinstance(doc, dict):
            out = {}
            for k, v in doc.items():
                if k in ("@odata.id", "ServerSentEventUri") and isinstance(v, str) and v.startswith("/") and \
                        not (top and k == "@odata.id"):
                    out[k] = self.link_origin + v
                else:
                    out[k] = self.foreign(v, top=False)
            return out
        if isinstance(doc, list):
            return [self.foreign(v, top=False) for v in doc]
        return doc

    def _cdu_document(self, base: str, rest: str, plant: Plant, s: PlantState) -> dict[str, Any] | None:
        f = plant.faults
        props = table_properties(plant.coolant_type, plant.additive_percent, (s.supply_c + s.return_c) / 2)
        leak_state = "Warning" if f.leak == "Warning" else "Critical" if f.leak else "OK"
        if rest == "":
            conditions = []
            if f.leak:
                conditions.append({"MessageId": f"Environmental.1.2.LeakDetected{leak_state}", "Severity": leak_state,
                                   "Message": f"A {leak_state.lower()} leak was detected by Moisture.",
                                   "OriginOfCondition": _ref(f"{base}/LeakDetection/LeakDetectors/Moisture")})
            if f.pump_failed:
                conditions.append({"MessageId": "Environmental.1.2.PumpFailed", "Severity": "Critical",
                                   "Message": "Pump '2' has failed.", "OriginOfCondition": _ref(f"{base}/Pumps/2")})
            health = "Critical" if conditions else "OK"
            return {"@odata.type": "#CoolingUnit.v1_5_0.CoolingUnit", "@odata.id": base, "Id": base.rsplit("/")[-1],
                    "EquipmentType": "CDU", "Name": "bitten lab CDU", "Manufacturer": "bitten", "Model": "sim-1",
                    "Status": {"State": "Enabled", "Health": health, "HealthRollup": health,
                               "Conditions": conditions},
                    "Coolant": {"CoolantType": "Water", "AdditiveName": "Propylene glycol",
                                "AdditivePercent": plant.additive_percent,
                                "DensityKgPerCubicMeter": round(props.density_kg_m3, 2),
                                "SpecificHeatkJoulesPerKgK": round(props.specific_heat_kj_kg_k, 4)},
                    "CoolingCapacityWatts": 250000, "PumpRedundancy": [{"MinNeededInGroup": 1}],
                    "PrimaryCoolantConnectors": _ref(f"{base}/PrimaryCoolantConnectors"),
                    "SecondaryCoolantConnectors": _ref(f"{base}/SecondaryCoolantConnectors"),
                    "Pumps": _ref(f"{base}/Pumps"), "Filters": _ref(f"{base}/Filters"),
                    "LeakDetection": _ref(f"{base}/LeakDetection")}
        for side in ("Primary", "Secondary"):
            coll = f"{side}CoolantConnectors"
            if rest == coll:
                return _collection(f"{base}/{rest}", "#CoolantConnectorCollection.CoolantConnectorCollection",
                                   [f"{base}/{rest}/1"])
            if rest == f"{coll}/1":
                return self._connector(f"{base}/{rest}", side, s)
        if rest == "Pumps":
            return _collection(f"{base}/Pumps", "#PumpCollection.PumpCollection", [f"{base}/Pumps/1",
                                                                                  f"{base}/Pumps/2"])
        if rest in ("Pumps/1", "Pumps/2"):
            failed = rest == "Pumps/2" and f.pump_failed
            return {"@odata.type": "#Pump.v1_2_0.Pump", "@odata.id": f"{base}/{rest}", "Id": rest[-1],
                    "Name": f"CDU Pump {rest[-1]}", "PumpType": "Liquid",
                    "Status": {"State": "UnavailableOffline" if failed else "Enabled",
                               "Health": "Critical" if failed else "OK"},
                    "PumpSpeedPercent": {"Reading": 0 if failed else round(30 + 60 * s.flow_lpm
                                                                          / plant.rated_flow_lpm, 1)}}
        if rest == "Filters":
            return _collection(f"{base}/Filters", "#FilterCollection.FilterCollection", [f"{base}/Filters/1"])
        if rest == "Filters/1":
            return {"@odata.type": "#Filter.v1_1_0.Filter", "@odata.id": f"{base}/Filters/1", "Id": "1",
                    "Name": "CDU Filter", "ServiceHours": 1200, "RatedServiceHours": 10000,
                    "Status": {"State": "Enabled", "Health": "OK"}}
        if rest == "LeakDetection":
            return {"@odata.type": "#LeakDetection.v1_2_0.LeakDetection", "@odata.id": f"{base}/LeakDetection",
                    "Id": "LeakDetection", "Name": "Leak Detection Systems",
                    "Status": {"State": "Enabled", "Health": leak_state},
                    "LeakDetectorGroups": [{"GroupName": "Detectors in the CDU", "Detectors": [
                        {"DataSourceUri": f"{base}/LeakDetection/LeakDetectors/Moisture",
                         "DeviceName": "Moisture", "DetectorState": leak_state}]}],
                    "LeakDetectors": _ref(f"{base}/LeakDetection/LeakDetectors")}
        if rest == "LeakDetection/LeakDetectors":
            return _collection(f"{base}/{rest}", "#LeakDetectorCollection.LeakDetectorCollection",
                               [f"{base}/{rest}/Moisture"])
        if rest == "LeakDetection/LeakDetectors/Moisture":
            return {"@odata.type": "#LeakDetector.v1_2_0.LeakDetector", "@odata.id": f"{base}/{rest}",
                    "Id": "Moisture", "Name": "Moisture", "LeakDetectorType": "Moisture",
                    "DetectorState": leak_state, "Status": {"State": "Enabled", "Health": leak_state}}
        return None

    def _connector(self, path: str, side: str, s: PlantState) -> dict[str, Any]:
        prim = side == "Primary"
        supply, ret = (s.facility_supply_c, s.facility_return_c) if prim else (s.supply_c, s.return_c)
        flow = s.facility_flow_lpm if prim else s.flow_lpm
        heat = s.heat_facility_kw if prim else s.heat_rack_kw
        doc: dict[str, Any] = {
            "@odata.type": "#CoolantConnector.v1_3_0.CoolantConnector", "@odata.id": path, "Id": "1",
            "Name": "Facility supply" if prim else "Rack supply", "CoolantConnectorType": "Pair",
            "Status": {"State": "Enabled", "Health": "OK"}, "RatedFlowLitersPerMinute": 200,
            "FlowLitersPerMinute": _reading(flow, f"{side}Flow"),
            "SupplyTemperatureCelsius": _reading(supply, f"{side}SupplyTemp"),
            "ReturnTemperatureCelsius": _reading(ret, f"{side}ReturnTemp"),
            "DeltaTemperatureCelsius": _reading(ret - supply, f"{side}DeltaTemp"),
            "HeatRemovedkW": _reading(heat, f"{side}HeatLoad"),
        }
        if not prim:
            low, high = self.setpoint_bounds
            doc["SupplyTemperatureControlCelsius"] = {"SetPoint": round(s.supply_c, 2), "AllowableMin": low,
                                                      "AllowableMax": high, "ControlMode": "Automatic"}
        return doc

    def patch(self, path: str, body: dict[str, Any]) -> tuple[int, str]:
        path = path.rstrip("/")
        prefix = f"{R}/ThermalEquipment/CDUs/"
        if not (path.startswith(prefix) and path.endswith("/SecondaryCoolantConnectors/1")):
            return 405, "only the secondary connector's SupplyTemperatureControlCelsius is writable"
        cdu_id = path[len(prefix):].split("/")[0]
        control = body.get("SupplyTemperatureControlCelsius")
        if not cdu_id.isdigit() or not isinstance(control, dict) or set(body) != {"SupplyTemperatureControlCelsius"}:
            return 400, "PATCH {SupplyTemperatureControlCelsius: {SetPoint: x}} only"
        value = control.get("SetPoint")
        low, high = self.setpoint_bounds
        if not isinstance(value, int | float) or not low <= value <= high:
            return 400, f"SetPoint must be within [{low}, {high}]"
        plant = self.plants[int(cdu_id) - 1]
        with plant.lock:
            plant.supply_setpoint_c = float(value)
        return 204, ""


def _error(message_id: str, message: str) -> dict[str, Any]:
    """A Redfish error body (DSP0266 9.6: error.code, error.message, @Message.ExtendedInfo)."""
    return {"error": {"code": f"Base.1.0.{message_id}", "message": message,
                      "@Message.ExtendedInfo": [{"MessageId": f"Base.1.0.{message_id}", "Message": message}]}}


def _collection(path: str, odata_type: str, members: list[str]) -> dict[str, Any]:
    return {"@odata.type": odata_type, "@odata.id": path, "Name": path.rsplit("/", 1)[-1],
            "Members@odata.count": len(members), "Members": [_ref(m) for m in members]}


def cdu_handler(sim: CduSimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "bitten-cdu-sim/1"
        disable_nagle_algorithm = True
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _authorised(self, path: str) -> bool:
            if sim.username is None or path.rstrip("/") in (R, "/redfish") or path.startswith("/sim/"):
                return True
            if self.headers.get("X-Auth-Token") in sim.tokens:
                return True
            header = self.headers.get("Authorization", "")
            if header.startswith("Basic "):
                user, _, pw = b64decode(header[6:]).decode("utf-8", "replace").partition(":")
                if user == sim.username and pw == sim.password:
                    return True
            self._send(401, _error("NoValidSession", "authentication required"),
                       {"WWW-Authenticate": 'Basic realm="cdu"'})
            return False

        def _send(self, code: int, doc: Any, headers: dict[str, str] | None = None, plant: Plant | None = None
                  ) -> None:
            body = json.dumps(sim.foreign(doc)).encode() if doc is not None else b""
            faults = plant.faults if plant is not None else Faults()
            pad = faults.pad_bytes if code == 200 and body.endswith(b"}") else 0
            prefix, suffix = (body[:-1] + b', "Oem": {"Padding": "', b'"}}') if pad else (body, b"")
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            if pad and not faults.pad_declared:
                self.send_header("Connection", "close")
                self.close_connection = True
            else:
                self.send_header("Content-Length", str(len(prefix) + pad + len(suffix)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            drip = faults.drip_s  # once: a test may change it while this answer drips
            try:
                if drip:
                    for i in range(len(prefix)):
                        self.wfile.write(prefix[i:i + 1])
                        self.wfile.flush()
                        time.sleep(drip)
                else:
                    self.wfile.write(prefix)
                chunk = b"x" * 65536
                left = pad
                while left > 0:
                    self.wfile.write(chunk[:min(left, len(chunk))])
                    left -= len(chunk)
                self.wfile.write(suffix)
            except OSError:
                self.close_connection = True  # the client gave up (as it should on a dripping device)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return {}
            return body if isinstance(body, dict) else {}

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path = parts.path
            with sim.hits_lock:
                sim.hits[path] = sim.hits.get(path, 0) + 1
            if not self._authorised(path):
                return
            if path == "/sim/state":
                self._send(200, [{"faults": p.faults.__dict__, "state": p.advance().__dict__} for p in sim.plants])
                return
            if path.rstrip("/") == f"{R}/EventService/SSE":
                self._stream()
                return
            doc = sim.document(path)
            if doc is None:
                self._send(404, _error("ResourceMissingAtURI", path))
                return
            expand = _parse_expand(parts.query) if sim.expand else None
            if expand is not None:
                doc = sim.expanded(doc, *expand)
            self._send(200, doc, plant=sim.cdu_of(path.rstrip("/")))

        def do_DELETE(self) -> None:
            path = urlsplit(self.path).path.rstrip("/")
            if not self._authorised(path):
                return
            prefix = f"{R}/SessionService/Sessions/"
            sid = path[len(prefix):] if path.startswith(prefix) else ""
            if sid not in sim.sessions:
                self._send(404 if sid else 405, _error("ResourceMissingAtURI" if sid else "OperationNotAllowed",
                                                       "no such session" if sid else "not deletable"))
                return
            sim.tokens.discard(sim.sessions.pop(sid))
            sim.sessions_deleted += 1
            self._send(204, None)

        def _stream(self) -> None:
            flag, queue = threading.Event(), cast(list[dict[str, Any]], [])
            with sim.sub_lock:
                sim.subscribers.append((flag, queue))
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                self.wfile.write(b": connected\n\n")
                self.wfile.flush()
                while True:
                    flag.wait(15)
                    with sim.sub_lock:
                        events, queue[:] = list(queue), []
                        flag.clear()
                    for event in events:
                        self.wfile.write(f"id: {event['Id']}\ndata: {json.dumps(event)}\n\n".encode())
                    if not events:
                        self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
            except OSError:
                pass
            finally:
                with sim.sub_lock:
                    sim.subscribers.remove((flag, queue))

        def do_PATCH(self) -> None:
            path = urlsplit(self.path).path
            if not self._authorised(path):
                return
            code, message = sim.patch(path, self._body())
            self._send(code, _error("PropertyValueNotInList", message) if message else None)

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            if path.rstrip("/") == f"{R}/SessionService/Sessions":
                body = self._body()
                if sim.username is not None and (body.get("UserName"), body.get("Password")) == (sim.username,
                                                                                                 sim.password):
                    token = secrets.token_hex(16)
                    sid = token[:8]
                    sim.tokens.add(token)
                    sim.sessions[sid] = token
                    location = f"{R}/SessionService/Sessions/{sid}"
                    self._send(201, {"@odata.id": location, "Id": sid, "UserName": sim.username},
                               {"X-Auth-Token": token, "Location": (sim.link_origin or "") + location})
                else:
                    self._send(401, _error("NoValidSession", "bad credentials"))
                return
            if not path.startswith("/sim/"):
                self._send(405, _error("OperationNotAllowed",
                                       "read-only service (the simulator's controls are under /sim/)"))
                return
            body = self._body()
            try:
                cdu = int(body.pop("cdu", 1))
                if path == "/sim/fault":
                    self._send(200, sim.set_fault(cdu, **body))
                elif path == "/sim/clear":
                    self._send(200, sim.set_fault(cdu, leak=False, pump_failed=False, flow_lpm=None, supply_c=None,
                                                  sensors={}, drip_s=None, pad_bytes=0, pad_declared=True))
                else:
                    self._send(404, {"error": "POST /sim/fault {cdu, leak|pump_failed|flow_lpm|supply_c} or "
                                              "/sim/clear"})
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                self._send(400, {"error": f"bad fault request: {exc}"})

    return Handler


def serve_cdus(sim: CduSimulator, host: str = "127.0.0.1", port: int = 0, *, certfile: str | None = None,
               keyfile: str | None = None) -> Server:
    return serve(cdu_handler(sim), host, port, certfile=certfile, keyfile=keyfile)
