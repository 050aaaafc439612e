"""Redfish ThermalEquipment CDUs: read a CoolingUnit (connectors, pumps, filters, leak detectors, reservoirs).

Through bitten.core.redfish (``bitten.cooling.transport``: one deadline per read, a size cap, origin pinning,
sessions). Where the service offers ``$expand`` (ProtocolFeaturesSupported.ExpandQuery in its service root) a CDU is
read in one request (``$expand=.($levels=3)``); a member the service left unexpanded is fetched by itself, so a
service that claims the feature and ignores it (a static mockup) still reads completely. Without it, collections
are listed every ``MEMBERSHIP_REFRESH`` polls and their members fetched each poll.

Every value is checked before it is believed. A field that is missing, null, not a number, not finite, or outside
its plausible range (bitten.site.model.Plausibility: a temperature in kelvin, a negative flow) reads as None, and
the reason is kept in ``CduReading.problems`` under the input's name, so that alarm evaluation knows the input is
unknown (never "fine"). A document that is not JSON or not the resource it should be fails the whole read with
DeviceError, and the agent retries with backoff. Writes (a supply-temperature set point) happen only when enabled
and within the connector's AllowableMin/AllowableMax read from the device.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

from bitten.cooling.errors import DeviceError, WriteRefused
from bitten.cooling.transport import AuthMode, CduConnection
from bitten.site.model import Bounds, Plausibility

SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
#: re-list collections (connectors, pumps, ...) every this many polls; a 404 on a member re-lists at once
MEMBERSHIP_REFRESH = 30
#: how deep one expanded read of a CDU reaches (CDU -> LeakDetection -> LeakDetectors -> a detector)
EXPAND_LEVELS = 3
#: Environmental registry message ids (without version) and the alarm kind they raise
CONDITION_KINDS: dict[str, str] = {
    "LeakDetectedCritical": "leak",
    "LeakDetectedWarning": "leak",
    "FluidLevelBelowLowerCriticalThreshold": "leak",
    "PumpFailed": "pump_failed",
    "FlowRateBelowLowerCriticalThreshold": "low_flow",
    "TemperatureAboveUpperCriticalThreshold": "high_supply_temperature",
}
#: Redfish Health values
HEALTH = frozenset({"OK", "Warning", "Critical"})
#: leak detector states that mean a leak (Redfish Health values)
LEAK_STATES = frozenset({"Warning", "Critical"})
#: where CoolingUnits live under /redfish/v1/ThermalEquipment (DMTF ThermalEquipment)
EQUIPMENT = ("CDUs", "HeatExchangers", "ImmersionUnits")
#: Redfish Status.State values that mean a part is not there (not counted, not unknown)
ABSENT = frozenset({"Absent"})


@dataclass
class Control:
    set_point: float | None
    allowable_min: float | None
    allowable_max: float | None
    mode: str | None


@dataclass
class Connector:
    side: str
    id: str
    health: str | None
    supply_c: float | None
    return_c: float | None
    delta_c_reported: float | None
    flow_lpm: float | None
    heat_reported_kw: float | None
    supply_setpoint: Control | None = None


@dataclass
class PumpReading:
    id: str
    state: str | None
    health: str | None
    speed_percent: float | None

    @property
    def failed(self) -> bool:
        return self.health == "Critical" or self.state in ("UnavailableOffline", "Disabled")

    @property
    def known(self) -> bool:
        """Its health or state was read: whether it failed is known."""
        return self.failed or self.health in HEALTH


@dataclass
class Part:
    """A filter, reservoir or leak detector: an id, a health and a state word (None: not read)."""

    id: str
    health: str | None
    state: str | None


@dataclass
class Condition:
    message_id: str
    severity: str
    message: str
    origin: str

    @property
    def kind(self) -> str | None:
        return CONDITION_KINDS.get(self.message_id.rsplit(".", 1)[-1])


@dataclass
class CduReading:
    cdu: str
    timestamp: float
    health: str | None = None
    health_rollup: str | None = None
    coolant_type: str | None = None
    coolant_additive_percent: float | None = None
    density_kg_m3: float | None = None
    specific_heat_kj_kg_k: float | None = None
    connectors: list[Connector] = field(default_factory=list)
    pumps: list[PumpReading] = field(default_factory=list)
    filters: list[Part] = field(default_factory=list)
    reservoirs: list[Part] = field(default_factory=list)
    leak_detectors: list[Part] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)
    #: fields that were present but not usable (not a number, wrong type, not finite, implausible)
    garbage: list[str] = field(default_factory=list)
    #: input -> why it reads as None ("secondary.flow": "Reading is 'NaN', not a number"); the alarms' unknowns
    problems: dict[str, str] = field(default_factory=dict)
    #: requests this read took (1 with $expand)
    requests: int = 0

    def connector(self, side: str) -> Connector | None:
        return next((c for c in self.connectors if c.side == side), None)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _why(value: Any) -> str:
    """Why a raw value is not a usable number."""
    if value is None:
        return "null"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} (not finite)"
    text = repr(value)
    return f"{text[:40]} (not a number)"


def _expanded(ref: Any) -> bool:
    """A navigation property that carries the resource itself, not only its @odata.id."""
    return isinstance(ref, dict) and any(key == "@odata.type" or not key.startswith("@") for key in ref)


class RedfishCdu:
    """One CDU's Redfish service. Not thread-safe: the agent reads each CDU from one thread at a time."""

    def __init__(self, name: str, url: str, cdu_id: str = "1", *, username: str | None = None,
                 password: str | None = None, auth: AuthMode = "basic", ca_file: str | None = None,
                 timeout: float = 5.0, deadline_s: float | None = None, max_bytes: int = 4 * 1024 * 1024,
                 plausibility: Plausibility | None = None, collection: str = "CDUs") -> None:
        self.name = name
        self.base = url.rstrip("/")
        self.cdu_path = f"/redfish/v1/ThermalEquipment/{collection}/{cdu_id}"
        self.timeout = timeout
        self.deadline_s = deadline_s if deadline_s is not None else timeout
        self.limits = plausibility or Plausibility()
        # requests lets REQUESTS_CA_BUNDLE override a verify it is not given per request: always give it
        self.verify: str = ca_file or (SYSTEM_CA_BUNDLE if os.path.exists(SYSTEM_CA_BUNDLE) else "")
        self.connection = CduConnection(name, self.base, auth=auth, username=username, password=password,
                                        ca_file=self.verify or None, timeout=timeout, max_bytes=max_bytes)
        self._members: dict[str, list[str]] = {}
        self._polls = 0
        self._expand: str | bool | None = False  # False: not decided yet; None: the service does not expand
        self._requests = 0

    def close(self) -> None:
        """Delete the session (auth: session) and close the connection."""
        with self.connection.deadline(self.timeout):
            self.connection.close()

    # --- transport ------------------------------------------------------------------------------------------
    def get(self, path: str) -> dict[str, Any]:
        self._requests += 1
        return self.connection.get_json(path)

    def _expand_query(self) -> str | None:
        """``$expand=.($levels=N)`` where the service root offers it (decided once per connection)."""
        if self._expand is False:
            features = self.connection.service_root.get("ProtocolFeaturesSupported")
            expand = features.get("ExpandQuery") if isinstance(features, dict) else None
            query = None
            if isinstance(expand, dict) and expand.get("Levels") is True:
                levels = expand.get("MaxLevels")
                depth = min(EXPAND_LEVELS, levels) if isinstance(levels, int) and levels >= 1 else 1
                if expand.get("NoLinks") is True:
                    query = f"$expand=.($levels={depth})"
                elif expand.get("ExpandAll") is True:
                    query = f"$expand=*($levels={depth})"
            self._expand = query
        return self._expand if isinstance(self._expand, str) else None

    def _link(self, doc: dict[str, Any], key: str) -> Any:
        value = doc.get(key)
        if isinstance(value, dict) and isinstance(value.get("@odata.id"), str):
            return value
        return None

    def _doc(self, ref: Any) -> dict[str, Any]:
        """The resource a navigation property names: inline when the service expanded it, else fetched."""
        if _expanded(ref):
            return dict(ref)
        return self.get(str(ref["@odata.id"]))

    def _member_docs(self, ref: Any, refresh: bool) -> list[dict[str, Any]]:
        if ref is None:
            return []
        if _expanded(ref):
            members = ref.get("Members", [])
            if not isinstance(members, list):
                raise DeviceError(f"{self.name}: {ref.get('@odata.id')}: Members is not a list")
            return [self._doc(m) for m in members if isinstance(m, dict) and isinstance(m.get("@odata.id"), str)]
        collection = str(ref["@odata.id"])
        if refresh or collection not in self._members:
            coll = self.get(collection)
            members = coll.get("Members", [])
            if not isinstance(members, list):
                raise DeviceError(f"{self.name}: {collection}: Members is not a list")
            if members and all(_expanded(m) for m in members if isinstance(m, dict)):
                return [dict(m) for m in members if isinstance(m, dict)]
            self._members[collection] = [m["@odata.id"] for m in members
                                         if isinstance(m, dict) and isinstance(m.get("@odata.id"), str)]
        docs = []
        for member in self._members[collection]:
            try:
                docs.append(self.get(member))
            except DeviceError:
                if refresh:
                    raise
                return self._member_docs(ref, refresh=True)  # membership changed (404): list again
        return docs

    # --- reading --------------------------------------------------------------------------------------------
    def read(self) -> CduReading:
        """One reading of the CDU, within the read deadline (connect, every request, every body)."""
        with self.connection.deadline(self.deadline_s):
            return self._read()

    def _read(self) -> CduReading:
        self._polls += 1
        self._requests = 0
        refresh = self._polls % MEMBERSHIP_REFRESH == 0
        self.connection.ensure_open()
        query = self._expand_query()
        root = self.get(self.cdu_path + (f"?{query}" if query else ""))
        if "CoolingUnit" not in str(root.get("@odata.type", "")):
            raise DeviceError(f"{self.name}: {self.cdu_path} is not a CoolingUnit "
                              f"(@odata.type {root.get('@odata.type')!r})")
        out = CduReading(self.name, time.time())
        status = self._status(root)
        out.health, out.health_rollup = self._word(status, "Health"), self._word(status, "HealthRollup")
        raw_coolant = root.get("Coolant")
        coolant: dict[str, Any] = raw_coolant if isinstance(raw_coolant, dict) else {}
        out.coolant_type = coolant.get("CoolantType") if isinstance(coolant.get("CoolantType"), str) else None
        out.coolant_additive_percent = self._num(out, coolant, "AdditivePercent", self.limits.percent,
                                                 "coolant.additive_percent")
        out.density_kg_m3 = self._num(out, coolant, "DensityKgPerCubicMeter", self.limits.density_kg_m3,
                                      "coolant.density")
        out.specific_heat_kj_kg_k = self._num(out, coolant, "SpecificHeatkJoulesPerKgK",
                                              self.limits.specific_heat_kj_kg_k, "coolant.specific_heat")
        out.conditions = self._conditions(status)
        for side, key in (("primary", "PrimaryCoolantConnectors"), ("secondary", "SecondaryCoolantConnectors")):
            for doc in self._member_docs(self._link(root, key), refresh):
                out.connectors.append(self._connector(out, side, doc))
        for doc in self._member_docs(self._link(root, "Pumps"), refresh):
            st = self._status(doc)
            speed = doc.get("PumpSpeedPercent")
            pid = str(doc.get("Id", "?"))
            pump = PumpReading(pid, self._word(st, "State"), self._word(st, "Health"),
                        self._num(out, speed, "Reading", self.limits.percent, f"pump.{pid}.speed")
                        if isinstance(speed, dict) else None)
            if not pump.known:
                out.problems[f"pump.{pid}"] = f"pump {pid}: Status.Health {_why(st.get('Health'))}"
            out.pumps.append(pump)
            out.conditions.extend(self._conditions(st))
        for doc in self._member_docs(self._link(root, "Filters"), refresh):
            st = self._status(doc)
            out.filters.append(Part(str(doc.get("Id", "?")), self._word(st, "Health"), self._word(st, "State")))
        for doc in self._member_docs(self._link(root, "Reservoirs"), refresh):
            st = self._status(doc)
            level = doc.get("FluidLevelStatus")
            out.reservoirs.append(Part(str(doc.get("Id", "?")), self._word(st, "Health"),
                                       level if isinstance(level, str) else None))
        leak = self._link(root, "LeakDetection")
        if leak is not None:
            out.leak_detectors = self._leaks(out, leak, refresh)
        out.requests = self._requests
        return out

    @staticmethod
    def _word(doc: dict[str, Any], key: str) -> str | None:
        value = doc.get(key)
        return value if isinstance(value, str) else None

    def _num(self, out: CduReading, doc: Any, key: str, bounds: Bounds | None, name: str,
             label: str | None = None) -> float | None:
        """A number from ``doc[key]`` if it is one and plausible; otherwise None and the reason under ``name``."""
        label = label or key
        if not isinstance(doc, dict) or key not in doc:
            out.problems[name] = f"{label} missing"
            return None
        raw = doc[key]
        value = _number(raw)
        if value is None:
            out.problems[name] = f"{label} is {_why(raw)}"
            if raw is not None:
                out.garbage.append(key)
            return None
        if bounds is not None and value not in bounds:
            out.problems[name] = f"{label} {value:g} is implausible (outside [{bounds.min:g}, {bounds.max:g}])"
            out.garbage.append(key)
            return None
        return value

    def _reading(self, out: CduReading, doc: dict[str, Any], key: str, bounds: Bounds | None,
                 name: str) -> float | None:
        value = doc.get(key)
        if isinstance(value, dict):
            return self._num(out, value, "Reading", bounds, name, f"{key}.Reading")
        return self._num(out, doc, key, bounds, name)  # older schemas carry a bare number

    @staticmethod
    def _status(doc: dict[str, Any]) -> dict[str, Any]:
        status = doc.get("Status")
        return status if isinstance(status, dict) else {}

    @staticmethod
    def _conditions(status: dict[str, Any]) -> list[Condition]:
        conditions = status.get("Conditions")
        out = []
        for cond in conditions if isinstance(conditions, list) else []:
            if not isinstance(cond, dict) or not isinstance(cond.get("MessageId"), str):
                continue
            origin = cond.get("OriginOfCondition")
            out.append(Condition(cond["MessageId"], str(cond.get("Severity", "")), str(cond.get("Message", "")),
                                 str(origin.get("@odata.id", "")) if isinstance(origin, dict) else ""))
        return out

    def _connector(self, out: CduReading, side: str, doc: dict[str, Any]) -> Connector:
        limits = self.limits
        control = doc.get("SupplyTemperatureControlCelsius")
        setpoint = None
        cid = str(doc.get("Id", "?"))
        if isinstance(control, dict):
            scratch = CduReading(out.cdu, out.timestamp)  # a control's own fields are not alarm inputs
            setpoint = Control(self._num(scratch, control, "SetPoint", limits.temperature_c, "setpoint"),
                               self._num(scratch, control, "AllowableMin", None, "min"),
                               self._num(scratch, control, "AllowableMax", None, "max"),
                               control.get("ControlMode") if isinstance(control.get("ControlMode"), str) else None)
            out.garbage.extend(scratch.garbage)
        return Connector(
            side=side, id=cid, health=self._word(self._status(doc), "Health"),
            supply_c=self._reading(out, doc, "SupplyTemperatureCelsius", limits.temperature_c, f"{side}.supply"),
            return_c=self._reading(out, doc, "ReturnTemperatureCelsius", limits.temperature_c, f"{side}.return"),
            delta_c_reported=self._reading(out, doc, "DeltaTemperatureCelsius", limits.temperature_difference_k,
                                           f"{side}.delta"),
            flow_lpm=self._reading(out, doc, "FlowLitersPerMinute", limits.flow_lpm, f"{side}.flow"),
            heat_reported_kw=self._reading(out, doc, "HeatRemovedkW", limits.power_kw, f"{side}.heat"),
            supply_setpoint=setpoint,
        )

    def _leaks(self, out: CduReading, ref: Any, refresh: bool) -> list[Part]:
        doc = self._doc(ref)
        found: list[Part] = []
        groups = doc.get("LeakDetectorGroups")
        for group in groups if isinstance(groups, list) else []:
            detectors = group.get("Detectors") if isinstance(group, dict) else None
            for det in detectors if isinstance(detectors, list) else []:
                if not isinstance(det, dict):
                    continue
                name = str(det.get("DeviceName") or str(det.get("DataSourceUri", "?")).rsplit("/", 1)[-1])
                found.append(self._detector(out, name, det, None))
        if found:
            return found
        for det in self._member_docs(self._link(doc, "LeakDetectors"), refresh):
            status = self._status(det)
            if self._word(status, "State") in ABSENT:
                continue
            name = str(det.get("Name") or det.get("Id", "?"))
            found.append(self._detector(out, name, det, self._word(status, "Health")))
        return found

    @staticmethod
    def _detector(out: CduReading, name: str, det: dict[str, Any], health: str | None) -> Part:
        state = det.get("DetectorState")
        if state not in HEALTH:
            out.problems[f"leak.{name}"] = f"leak detector {name}: DetectorState " + (
                "missing" if "DetectorState" not in det else _why(state) if not isinstance(state, str)
                else f"{state[:40]!r} (not OK, Warning or Critical)")
            if "DetectorState" in det and state is not None:
                out.garbage.append("DetectorState")
            return Part(name, health, None)
        return Part(name, health, state)

    # --- events ---------------------------------------------------------------------------------------------
    def event_stream_uri(self) -> str | None:
        """The EventService's ServerSentEventUri (on the CDU's origin), when the service offers one and is enabled."""
        with self.connection.deadline(self.deadline_s):
            try:
                service = self.get("/redfish/v1/EventService")
            except DeviceError:
                return None
        uri = service.get("ServerSentEventUri")
        if service.get("ServiceEnabled") is False or not isinstance(uri, str):
            return None
        return self.connection.resolve(uri)  # DeviceError for another origin: the caller polls only

    # --- writes ---------------------------------------------------------------------------------------------
    def set_supply_temperature(self, value: float, *, side: str = "secondary", writes_enabled: bool) -> float:
        """PATCH the first connector's SupplyTemperatureControlCelsius.SetPoint, within AllowableMin/Max."""
        if not writes_enabled:
            raise WriteRefused("writes to the cooling equipment are disabled (bitten_cooling.agent.writes_enabled)")
        with self.connection.deadline(self.deadline_s):
            root = self.get(self.cdu_path)
            key = "SecondaryCoolantConnectors" if side == "secondary" else "PrimaryCoolantConnectors"
            docs = self._member_docs(self._link(root, key), refresh=True)
            if not docs:
                raise WriteRefused(f"{self.name}: no {side} coolant connector")
            doc = docs[0]
            control = doc.get("SupplyTemperatureControlCelsius")
            if not isinstance(control, dict):
                raise WriteRefused(f"{self.name}: the {side} connector offers no SupplyTemperatureControlCelsius")
            low, high = _number(control.get("AllowableMin")), _number(control.get("AllowableMax"))
            if low is None or high is None:
                raise WriteRefused(f"{self.name}: the device gives no AllowableMin/AllowableMax: refusing to write")
            if not (math.isfinite(value) and low <= value <= high):
                raise WriteRefused(f"{self.name}: {value} degC is outside the device's allowable range "
                                   f"[{low}, {high}]")
            etag = doc["@odata.etag"] if isinstance(doc.get("@odata.etag"), str) else None
            code = self.connection.patch(str(doc["@odata.id"]),
                                         {"SupplyTemperatureControlCelsius": {"SetPoint": value}}, etag)
        if code not in (200, 202, 204):
            raise DeviceError(f"{self.name}: PATCH set point: HTTP {code}")
        return value
