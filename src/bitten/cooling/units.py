"""Engineering units: convert a reading to the canonical unit of its dimension (see bitten.site.model.UNITS)."""

from __future__ import annotations

from bitten.site.model import UNITS

CANONICAL: dict[str, str] = {
    "temperature": "degC", "temperature_difference": "K", "flow": "L/min", "power": "kW", "energy": "kWh",
    "volume": "m3", "pressure": "kPa", "percent": "%", "dimensionless": "1",
}


def to_canonical(value: float, unit: str) -> tuple[float, str]:
    dimension, factor = UNITS[unit]
    return value * factor, CANONICAL[dimension]
