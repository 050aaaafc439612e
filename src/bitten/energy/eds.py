"""The shape of Energinet's Energi Data Service, standard library only: its datasets (time field, value field,
step, plausible range) and its times (start/end in Danish local time, record times in UTC). Shared by the client
(bitten.energy.energinet) and the lab's TEST DOUBLE of the service, which runs without the project's venv.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

DANISH_TIME = ZoneInfo("Europe/Copenhagen")


@dataclass(frozen=True)
class Dataset:
    name: str
    time_field: str
    #: value field; {currency} is substituted for price datasets
    value_field: str
    step_s: int
    #: plausible range of a value: outside it is garbage (negative prices are real; CO2 below 0 is not)
    low: float
    high: float
    kind: str  # "co2" or "price"


DATASETS: dict[str, Dataset] = {
    "CO2Emis": Dataset("CO2Emis", "Minutes5UTC", "CO2Emission", 300, 0.0, 2000.0, "co2"),
    "CO2EmisProg": Dataset("CO2EmisProg", "Minutes5UTC", "CO2Emission", 300, 0.0, 2000.0, "co2"),
    "DayAheadPrices": Dataset("DayAheadPrices", "TimeUTC", "DayAheadPrice{currency}", 900, -50000.0, 50000.0,
                              "price"),
    "Elspotprices": Dataset("Elspotprices", "HourUTC", "SpotPrice{currency}", 3600, -50000.0, 50000.0, "price"),
}


def danish_minutes(t: float) -> str:
    """The API's start/end form: Danish local time, yyyy-MM-ddTHH:mm."""
    return datetime.fromtimestamp(t, DANISH_TIME).strftime("%Y-%m-%dT%H:%M")


def parse_danish(text: str) -> float:
    """The API's start/end (Danish local time: yyyy, yyyy-MM, yyyy-MM-dd or yyyy-MM-ddTHH:mm) as Unix seconds."""
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%d", "%Y-%m", "%Y"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=DANISH_TIME).timestamp()
        except ValueError:
            continue
    raise ValueError(f"unparseable time {text!r}")


def parse_utc(text: Any) -> float | None:
    """A record's UTC time field (``2026-12-01T21:05:00``, no offset) as Unix seconds; None if unparseable."""
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def stamps(t: float) -> tuple[str, str]:
    """A record's time in UTC and in Danish time, as the service writes them."""
    return (datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            datetime.fromtimestamp(t, DANISH_TIME).strftime("%Y-%m-%dT%H:%M:%S"))


def records(t0: float, t1: float, co2: Any, price: Any, price_area: str = "DK1") -> dict[str, list[dict[str, Any]]]:
    """Records per dataset over [t0, t1) from two functions of time: co2(t) in g/kWh and price(t) in DKK/MWh."""
    out: dict[str, list[dict[str, Any]]] = {"CO2Emis": [], "CO2EmisProg": [], "DayAheadPrices": []}
    t = t0 - t0 % 300
    while t < t1:
        utc, dk = stamps(t)
        value = round(float(co2(t)), 2)
        for name in ("CO2Emis", "CO2EmisProg"):
            out[name].append({"Minutes5UTC": utc, "Minutes5DK": dk, "PriceArea": price_area, "CO2Emission": value})
        if t % 900 == 0:
            p = round(float(price(t)), 2)
            out["DayAheadPrices"].append({"TimeUTC": utc, "TimeDK": dk, "PriceArea": price_area,
                                          "DayAheadPriceDKK": p, "DayAheadPriceEUR": round(p / 7.46, 2)})
        t += 300
    return out
