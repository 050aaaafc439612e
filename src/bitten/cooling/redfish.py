"""Redfish ThermalEquipment CDUs: read a CoolingUnit (connectors, pumps, filters, leak detectors, reservoirs).

A plain requests client: sushy has no ThermalEquipment resources, and a CDU is a handful of GETs. Every reading
is parsed defensively: a field that is missing or not a finite number reads as None (and is counted as garbage),
a document that is not JSON or not the resource it should be fails the whole poll with DeviceError, and the agent
retries with backoff. TLS verification is always on; the CA is configurable. Writes (a supply-temperature set
point) happen only when enabled and within the connector's AllowableMin/AllowableMax read from the device.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from bitten.cooling.modbus import DeviceError, WriteRefused

SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
#: re-list collections (connectors, pumps, ...) every this many polls; a 404 on a member re-lists at once
MEMBERSHIP_REFRESH = 30
#: Environmental registry message ids (without version) and the alarm kind they raise
CONDITION_KINDS: dict[str, str] = {
    "LeakDetectedCritical": "leak",
    "LeakDetectedWarning": "leak",
    "FluidLevelBelowLowerCriticalThreshold": "leak",
    "PumpFailed": "pump_failed",
    "FlowRateBelowLowerCriticalThreshold": "low_flow",
    "TemperatureAboveUpperCriticalThreshold": "high_supply_temperature",
}


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


@dataclass
class Part:
    """A filter, reservoir or leak detector: an id, a health and a state word."""

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
    #: fields that were present but not usable (not a number, wrong type)
    garbage: list[str] = field(default_factory=list)

    def connector(self, side: str) -> Connector | None:
        return next((c for c in self.connectors if c.side == side), None)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class RedfishCdu:
    """One CDU's Redfish service. Not thread-safe: the agent polls each CDU from one thread at a time."""

    def __init__(self, name: str, url: str, cdu_id: str = "1", *, username: str | None = None,
                 password: str | None = None, auth: str = "basic", ca_file: str | None = None,
                 timeout: float = 5.0, session: requests.Session | None = None) -> None:
        self.name = name
        self.base = url.rstrip("/")
        self.cdu_path = f"/redfish/v1/ThermalEquipment/CDUs/{cdu_id}"
        self.timeout = timeout
        self.auth = auth
        self.username = username
        self.password = password
        self.session = session or requests.Session()
        self.session.headers.update({"Accept": "application/json", "OData-Version": "4.0"})
        # requests lets REQUESTS_CA_BUNDLE override a verify it is not given per request: always give it
        self.verify: str | bool = ca_file or (SYSTEM_CA_BUNDLE if os.path.exists(SYSTEM_CA_BUNDLE) else True)
        if auth == "basic" and username is not None:
            self.session.auth = (username, password or "")
        self._token: str | None = None
        self._members: dict[str, list[str]] = {}
        self._polls = 0

    # --- transport ------------------------------------------------------------------------------------------
    def _login(self) -> None:
        resp = self.session.post(self.base + "/redfish/v1/SessionService/Sessions",
                                 json={"UserName": self.username, "Password": self.password},
                                 timeout=self.timeout, verify=self.verify)
        token = resp.headers.get("X-Auth-Token")
        if resp.status_code not in (200, 201) or not token:
            raise DeviceError(f"{self.name}: session login refused (HTTP {resp.status_code})")
        self._token = token
        self.session.headers["X-Auth-Token"] = token

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        if self.auth == "session" and self._token is None:
            self._login()
        url = path if path.startswith("http") else self.base + path
        try:
            resp = self.session.request(method, url, timeout=self.timeout, verify=self.verify, **kwargs)
            if resp.status_code == 401 and self.auth == "session":
                self._token = None
                self._login()
                resp = self.session.request(method, url, timeout=self.timeout, verify=self.verify, **kwargs)
        except requests.RequestException as exc:
            raise DeviceError(f"{self.name}: {method} {path}: {exc.__class__.__name__}: {exc}") from exc
        return resp

    def get(self, path: str) -> dict[str, Any]:
        resp = self._request("GET", path)
        if resp.status_code != 200:
            raise DeviceError(f"{self.name}: GET {path}: HTTP {resp.status_code}")
        try:
            doc = resp.json()
        except ValueError as exc:
            raise DeviceError(f"{self.name}: GET {path}: the answer is not JSON") from exc
        if not isinstance(doc, dict):
            raise DeviceError(f"{self.name}: GET {path}: the answer is not a JSON object")
        return doc

    def _link(self, doc: dict[str, Any], key: str) -> str | None:
        value = doc.get(key)
        if isinstance(value, dict) and isinstance(value.get("@odata.id"), str):
            return str(value["@odata.id"])
        return None

    def _member_docs(self, collection: str | None, refresh: bool) -> list[dict[str, Any]]:
        if collection is None:
            return []
        if refresh or collection not in self._members:
            coll = self.get(collection)
            members = coll.get("Members", [])
            if not isinstance(members, list):
                raise DeviceError(f"{self.name}: {collection}: Members is not a list")
            self._members[collection] = [m["@odata.id"] for m in members
                                         if isinstance(m, dict) and isinstance(m.get("@odata.id"), str)]
        docs = []
        for member in self._members[collection]:
            try:
                docs.append(self.get(member))
            except DeviceError:
                if refresh:
                    raise
                return self._member_docs(collection, refresh=True)  # membership changed (404): list again
        return docs

    # --- reading --------------------------------------------------------------------------------------------
    def read(self) -> CduReading:
        self._polls += 1
        refresh = self._polls % MEMBERSHIP_REFRESH == 0
        root = self.get(self.cdu_path)
        if "CoolingUnit" not in str(root.get("@odata.type", "")):
            raise DeviceError(f"{self.name}: {self.cdu_path} is not a CoolingUnit "
                              f"(@odata.type {root.get('@odata.type')!r})")
        out = CduReading(self.name, time.time())
        status = self._status(root)
        out.health, out.health_rollup = status.get("Health"), status.get("HealthRollup")
        raw_coolant = root.get("Coolant")
        coolant: dict[str, Any] = raw_coolant if isinstance(raw_coolant, dict) else {}
        out.coolant_type = coolant.get("CoolantType") if isinstance(coolant.get("CoolantType"), str) else None
        out.coolant_additive_percent = self._num(out, coolant, "AdditivePercent")
        out.density_kg_m3 = self._num(out, coolant, "DensityKgPerCubicMeter")
        out.specific_heat_kj_kg_k = self._num(out, coolant, "SpecificHeatkJoulesPerKgK")
        out.conditions = self._conditions(status)
        for side, key in (("primary", "PrimaryCoolantConnectors"), ("secondary", "SecondaryCoolantConnectors")):
            for doc in self._member_docs(self._link(root, key), refresh):
                out.connectors.append(self._connector(out, side, doc))
        for doc in self._member_docs(self._link(root, "Pumps"), refresh):
            st = self._status(doc)
            speed = doc.get("PumpSpeedPercent")
            out.pumps.append(PumpReading(str(doc.get("Id", "?")), st.get("State"), st.get("Health"),
                                  self._num(out, speed, "Reading") if isinstance(speed, dict) else None))
            out.conditions.extend(self._conditions(st))
        for doc in self._member_docs(self._link(root, "Filters"), refresh):
            st = self._status(doc)
            out.filters.append(Part(str(doc.get("Id", "?")), st.get("Health"), st.get("State")))
        for doc in self._member_docs(self._link(root, "Reservoirs"), refresh):
            st = self._status(doc)
            level = doc.get("FluidLevelStatus")
            out.reservoirs.append(Part(str(doc.get("Id", "?")), st.get("Health"),
                                       level if isinstance(level, str) else None))
        leak = self._link(root, "LeakDetection")
        if leak is not None:
            out.leak_detectors = self._leaks(leak, refresh)
        return out

    def _num(self, out: CduReading, doc: Any, key: str) -> float | None:
        if not isinstance(doc, dict) or key not in doc or doc[key] is None:
            return None
        value = _number(doc[key])
        if value is None:
            out.garbage.append(key)
        return value

    def _reading(self, out: CduReading, doc: dict[str, Any], key: str) -> float | None:
        value = doc.get(key)
        if isinstance(value, dict):
            return self._num(out, value, "Reading")
        if value is None:
            return None
        number = _number(value)  # older schemas carry a bare number
        if number is None:
            out.garbage.append(key)
        return number

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
        control = doc.get("SupplyTemperatureControlCelsius")
        setpoint = None
        if isinstance(control, dict):
            setpoint = Control(self._num(out, control, "SetPoint"), self._num(out, control, "AllowableMin"),
                               self._num(out, control, "AllowableMax"),
                               control.get("ControlMode") if isinstance(control.get("ControlMode"), str) else None)
        return Connector(
            side=side, id=str(doc.get("Id", "?")), health=self._status(doc).get("Health"),
            supply_c=self._reading(out, doc, "SupplyTemperatureCelsius"),
            return_c=self._reading(out, doc, "ReturnTemperatureCelsius"),
            delta_c_reported=self._reading(out, doc, "DeltaTemperatureCelsius"),
            flow_lpm=self._reading(out, doc, "FlowLitersPerMinute"),
            heat_reported_kw=self._reading(out, doc, "HeatRemovedkW"),
            supply_setpoint=setpoint,
        )

    def _leaks(self, path: str, refresh: bool) -> list[Part]:
        doc = self.get(path)
        found: list[Part] = []
        groups = doc.get("LeakDetectorGroups")
        for group in groups if isinstance(groups, list) else []:
            detectors = group.get("Detectors") if isinstance(group, dict) else None
            for det in detectors if isinstance(detectors, list) else []:
                if isinstance(det, dict) and isinstance(det.get("DetectorState"), str):
                    name = det.get("DeviceName") or str(det.get("DataSourceUri", "?")).rsplit("/", 1)[-1]
                    found.append(Part(str(name), None, det["DetectorState"]))
        if found:
            return found
        for det in self._member_docs(self._link(doc, "LeakDetectors"), refresh):
            state = det.get("DetectorState")
            found.append(Part(str(det.get("Name") or det.get("Id", "?")), self._status(det).get("Health"),
                              state if isinstance(state, str) else None))
        return found

    # --- events ---------------------------------------------------------------------------------------------
    def event_stream_uri(self) -> str | None:
        """The EventService's ServerSentEventUri, when the service offers one and is enabled."""
        try:
            service = self.get("/redfish/v1/EventService")
        except DeviceError:
            return None
        uri = service.get("ServerSentEventUri")
        if service.get("ServiceEnabled") is False or not isinstance(uri, str):
            return None
        return uri

    # --- writes ---------------------------------------------------------------------------------------------
    def set_supply_temperature(self, value: float, *, side: str = "secondary", writes_enabled: bool) -> float:
        """PATCH the first connector's SupplyTemperatureControlCelsius.SetPoint, within AllowableMin/Max."""
        if not writes_enabled:
            raise WriteRefused("writes to the cooling equipment are disabled (bitten_cooling.agent.writes_enabled)")
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
            raise WriteRefused(f"{self.name}: {value} degC is outside the device's allowable range [{low}, {high}]")
        headers = {"If-Match": doc["@odata.etag"]} if isinstance(doc.get("@odata.etag"), str) else {}
        resp = self._request("PATCH", str(doc["@odata.id"]),
                             json={"SupplyTemperatureControlCelsius": {"SetPoint": value}}, headers=headers)
        if resp.status_code not in (200, 202, 204):
            raise DeviceError(f"{self.name}: PATCH set point: HTTP {resp.status_code}")
        return value
