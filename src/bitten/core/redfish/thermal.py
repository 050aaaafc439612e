"""Redfish ThermalEquipment as sushy resources: a CoolingUnit (CDU) and its parts (sushy has none of these).

DMTF's CoolingUnit (``/redfish/v1/ThermalEquipment/CDUs/{id}``), CoolantConnector (primary and secondary), Pump,
Filter, Reservoir and LeakDetection/LeakDetector, as ``sushy.resources.base.ResourceBase`` with ``Field``\\ s, read
through a bitten.core.redfish.Connection (so with its TLS, deadline, size cap, retries, sessions and origin
pinning)::

    with Connection(Endpoint("cdu1", url, kind="CDU", flavour="generic"), creds, tls) as conn:
        unit = cooling_unit(conn, "1")
        flow = [c.flow_lpm for c in unit.primary_connectors()]

Readings are sensor excerpts (``{"Reading": ...}``, or a bare number in older schemas); a reading that is not a
finite number reads as None here, and the raw document stays in ``.json`` for callers that count garbage. Every
field is optional: CDUs omit many. Collections are read member by member (sushy's ResourceCollectionBase);
callers that poll many CDUs may prefer ``Connection.members(..., expand=1)`` where the service offers $expand.
"""

from __future__ import annotations

import math
from typing import Any

from sushy.resources import base
from sushy.resources import common as sushy_common

from bitten.core.redfish.connection import Connection

THERMAL_EQUIPMENT = "/redfish/v1/ThermalEquipment"


def finite(value: Any) -> float | None:
    """A finite number as float, anything else (strings, booleans, NaN, inf, null) as None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _reading(value: Any) -> float | None:
    if isinstance(value, dict):
        return finite(value.get("Reading"))
    return finite(value)


class ReadingField(base.Field):  # type: ignore[misc]
    """A sensor excerpt ``{"Reading": n}`` (or a bare number) as a float or None."""

    def __init__(self, name: str) -> None:
        super().__init__(name, adapter=_reading)


class StatusField(sushy_common.StatusField):  # type: ignore[misc]
    """Status with its Conditions (the alarms a device raises), which sushy's StatusField leaves out."""

    conditions = base.Field("Conditions", adapter=lambda v: [c for c in v if isinstance(c, dict)]
                            if isinstance(v, list) else [])


class CoolantField(base.CompositeField):  # type: ignore[misc]
    coolant_type = base.Field("CoolantType")
    additive_name = base.Field("AdditiveName")
    additive_percent = base.Field("AdditivePercent", adapter=finite)
    density_kg_m3 = base.Field("DensityKgPerCubicMeter", adapter=finite)
    specific_heat_kj_kg_k = base.Field("SpecificHeatkJoulesPerKgK", adapter=finite)


class ControlField(base.CompositeField):  # type: ignore[misc]
    """A set point with the bounds the device allows (writes stay within AllowableMin/AllowableMax)."""

    set_point = base.Field("SetPoint", adapter=finite)
    allowable_min = base.Field("AllowableMin", adapter=finite)
    allowable_max = base.Field("AllowableMax", adapter=finite)
    control_mode = base.Field("ControlMode")


class CoolantConnector(base.ResourceBase):  # type: ignore[misc]
    identity = base.Field("Id")
    name = base.Field("Name")
    status = StatusField("Status")
    coolant = CoolantField("Coolant")
    flow_lpm = ReadingField("FlowLitersPerMinute")
    supply_c = ReadingField("SupplyTemperatureCelsius")
    return_c = ReadingField("ReturnTemperatureCelsius")
    delta_c = ReadingField("DeltaTemperatureCelsius")
    supply_kpa = ReadingField("SupplyPressurekPa")
    return_kpa = ReadingField("ReturnPressurekPa")
    heat_removed_kw = ReadingField("HeatRemovedkW")
    supply_temperature_control = ControlField("SupplyTemperatureControlCelsius")


class Pump(base.ResourceBase):  # type: ignore[misc]
    identity = base.Field("Id")
    name = base.Field("Name")
    status = StatusField("Status")
    speed_percent = ReadingField("PumpSpeedPercent")


class Filter(base.ResourceBase):  # type: ignore[misc]
    identity = base.Field("Id")
    name = base.Field("Name")
    status = StatusField("Status")


class Reservoir(base.ResourceBase):  # type: ignore[misc]
    identity = base.Field("Id")
    name = base.Field("Name")
    status = StatusField("Status")
    fluid_level_status = base.Field("FluidLevelStatus")


class LeakDetector(base.ResourceBase):  # type: ignore[misc]
    identity = base.Field("Id")
    name = base.Field("Name")
    status = StatusField("Status")
    detector_state = base.Field("DetectorState")


class LeakDetection(base.ResourceBase):  # type: ignore[misc]
    identity = base.Field("Id")
    status = StatusField("Status")
    #: inline groups (``LeakDetectorGroups[].Detectors[]`` with DetectorState), when the device reports them so
    groups = base.Field("LeakDetectorGroups", adapter=lambda v: v if isinstance(v, list) else [])
    _detectors_path = base.Field(["LeakDetectors", "@odata.id"])

    def detectors(self) -> list[LeakDetector]:
        return _members(self, self._detectors_path, LeakDetector)


class CoolingUnit(base.ResourceBase):  # type: ignore[misc]
    """``/redfish/v1/ThermalEquipment/CDUs/{id}`` (or another CoolingUnit: ImmersionUnits, HeatExchangers)."""

    identity = base.Field("Id", required=True)
    name = base.Field("Name")
    equipment_type = base.Field("EquipmentType")
    manufacturer = base.Field("Manufacturer")
    model = base.Field("Model")
    serial_number = base.Field("SerialNumber")
    firmware_version = base.Field("FirmwareVersion")
    status = StatusField("Status")
    coolant = CoolantField("Coolant")
    _primary_path = base.Field(["PrimaryCoolantConnectors", "@odata.id"])
    _secondary_path = base.Field(["SecondaryCoolantConnectors", "@odata.id"])
    _pumps_path = base.Field(["Pumps", "@odata.id"])
    _filters_path = base.Field(["Filters", "@odata.id"])
    _reservoirs_path = base.Field(["Reservoirs", "@odata.id"])
    _leak_detection_path = base.Field(["LeakDetection", "@odata.id"])

    def primary_connectors(self) -> list[CoolantConnector]:
        return _members(self, self._primary_path, CoolantConnector)

    def secondary_connectors(self) -> list[CoolantConnector]:
        return _members(self, self._secondary_path, CoolantConnector)

    def pumps(self) -> list[Pump]:
        return _members(self, self._pumps_path, Pump)

    def filters(self) -> list[Filter]:
        return _members(self, self._filters_path, Filter)

    def reservoirs(self) -> list[Reservoir]:
        return _members(self, self._reservoirs_path, Reservoir)

    def leak_detection(self) -> LeakDetection | None:
        if not self._leak_detection_path:
            return None
        return LeakDetection(self._conn, self._leak_detection_path, redfish_version=self.redfish_version,
                             root=self._root)


def _members(parent: Any, path: str | None, kind: type[Any]) -> list[Any]:
    """The members of the collection at ``path`` as ``kind`` resources (none when the link is absent)."""
    if not path:
        return []

    class Collection(base.ResourceCollectionBase):  # type: ignore[misc]
        @property
        def _resource_type(self) -> type[Any]:
            return kind

    collection = Collection(parent._conn, path, redfish_version=parent.redfish_version, root=parent._root)
    return list(collection.get_members())


def cooling_unit(conn: Connection, cdu_id: str = "1", kind: str = "CDUs") -> CoolingUnit:
    """The CoolingUnit ``ThermalEquipment/{kind}/{cdu_id}`` of an open connection (errors translated)."""
    path = f"{THERMAL_EQUIPMENT}/{kind}/{cdu_id}"
    with conn.translated(f"GET {path}"):
        return CoolingUnit(conn.connector, path, redfish_version=conn.root.redfish_version, root=conn.root)
