"""Signal traces: generated DK1-like CO2 intensity, day-ahead price and district-heating demand, deterministic for a
seed, and conversion to and from Energi Data Service records.

GENERATED, NOT RECORDED: the service is unreachable from the build machines, so the simulator and the lab's signal
server use traces made here. Their shape follows public descriptions of DK1 (wind-dominated: CO2 intensity roughly
50-400 g/kWh, higher in winter evenings and calm spells; prices correlated with it and peaking morning and evening;
heat demand high in winter, requested supply temperature of a 4th-generation network 55-70 degC, higher when cold).
Every number in :data:`SHAPE` is an ASSUMPTION; a site replays its own recorded traces instead
(``bitten energy simulate --signals FILE`` with the JSON records the API returns).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bitten.energy.energinet import DANISH_TIME, DATASETS, parse_records

F64 = npt.NDArray[np.float64]

#: the generator's parameters (ASSUMPTIONS, see the module docstring)
SHAPE: dict[str, float] = {
    "co2_mean": 150.0,           # g/kWh, yearly mean of DK1 (order of magnitude of recent years)
    "co2_season": 50.0,          # winter above summer
    "co2_daily": 35.0,           # evening peak
    "co2_weather": 70.0,         # wind spells (AR(1), ~1.5 day correlation)
    "price_mean": 600.0,         # DKK/MWh
    "price_per_co2": 2.5,        # DKK/MWh per g/kWh
    "price_peak": 250.0,         # morning and evening peaks
    "price_noise": 80.0,
    "heat_demand_winter_kw": 450.0,  # the site's share of the network's demand for surplus heat
    "heat_demand_summer_kw": 120.0,
    "supply_temperature_winter_c": 70.0,
    "supply_temperature_summer_c": 56.0,
}


@dataclass
class SignalTrace:
    """Signals on a regular grid: ``t`` are period starts (Unix seconds, UTC)."""

    t: F64
    co2: F64            # realised g/kWh
    co2_forecast: F64   # g/kWh as forecast a day ahead
    price: F64          # DKK/MWh
    heat_demand: F64    # kW
    supply_temperature: F64  # requested, degC
    step_s: float
    origin: str = "generated"

    def __len__(self) -> int:
        return len(self.t)


def _ar1(rng: np.random.Generator, n: int, step_s: float, tau_s: float) -> F64:
    """Unit-variance AR(1) noise with correlation time tau_s, vectorised through a scaled cumulative filter."""
    phi = float(np.exp(-step_s / tau_s))
    e = rng.standard_normal(n) * np.sqrt(1 - phi ** 2)
    out = np.empty(n)
    # the recursion x[i] = phi x[i-1] + e[i] is a linear filter; blocks keep it exact and fast
    x = rng.standard_normal()
    # blocks short enough that phi^block stays above 1e-6 (1/phi^j must not overflow the float's precision)
    block = max(1, min(4096, int(13.8 / (step_s / tau_s))))
    powers = phi ** np.arange(block)
    for s in range(0, n, block):
        chunk = e[s:s + block]
        k = len(chunk)
        p = powers[:k]
        # x_j = phi^(j+1) x + sum_{i<=j} phi^(j-i) e_i  ==  p_j * (phi x + cumsum(e_i / p_i))
        out[s:s + k] = p * (phi * x + np.cumsum(chunk / p)) if phi > 1e-12 else chunk
        x = out[s + k - 1]
    return out


def generate(start: float, end: float, step_s: float = 300.0, seed: int = 1) -> SignalTrace:
    """A trace over [start, end) at step_s, the same for the same arguments."""
    rng = np.random.default_rng(seed)
    t = np.arange(start, end, step_s, dtype=np.float64)
    n = len(t)
    day = 86400.0
    year_phase = 2 * np.pi * (t - datetime(2026, 1, 15, tzinfo=UTC).timestamp()) / (365.25 * day)
    winter = 0.5 * (1 + np.cos(year_phase))  # 1 mid-January, 0 mid-July
    local_hour = ((t + 3600.0) % day) / 3600.0  # CET; DST is noise at this level
    evening = np.exp(-0.5 * ((local_hour - 18.5) / 2.5) ** 2)
    morning = np.exp(-0.5 * ((local_hour - 8.0) / 1.8) ** 2)
    weather = _ar1(rng, n, step_s, 1.5 * day)
    co2 = SHAPE["co2_mean"] + SHAPE["co2_season"] * (winter - 0.5) * 2 + SHAPE["co2_daily"] * (evening - 0.2) \
        + SHAPE["co2_weather"] * weather
    co2 = np.clip(co2, 25.0, 600.0)
    forecast = np.clip(co2 + 20.0 * _ar1(rng, n, step_s, 6 * 3600.0), 25.0, 600.0)
    price = SHAPE["price_mean"] + SHAPE["price_per_co2"] * (co2 - SHAPE["co2_mean"]) \
        + SHAPE["price_peak"] * (evening + 0.7 * morning - 0.4) + SHAPE["price_noise"] * _ar1(rng, n, step_s, 3 * 3600.)
    outdoor = 8.0 - 9.0 * (winter - 0.5) * 2 + 3.0 * _ar1(rng, n, step_s, 2 * day)  # degC, a Danish year
    cold = np.clip((15.0 - outdoor) / 20.0, 0.0, 1.0)
    demand = SHAPE["heat_demand_summer_kw"] + (SHAPE["heat_demand_winter_kw"] - SHAPE["heat_demand_summer_kw"]) * cold
    supply = SHAPE["supply_temperature_summer_c"] + (SHAPE["supply_temperature_winter_c"]
                                                     - SHAPE["supply_temperature_summer_c"]) * cold
    return SignalTrace(t, co2, forecast, price, demand, np.round(supply, 1), step_s)


def peak_scenario(start: float, *, before_s: float, peak_s: float, after_s: float, step_s: float = 300.0,
                  low: float = 120.0, high: float = 420.0) -> SignalTrace:
    """A grid peak for drills: CO2 ``low`` for before_s, ``high`` for peak_s, ``low`` again after (prices follow)."""
    t = np.arange(start, start + before_s + peak_s + after_s, step_s, dtype=np.float64)
    peak = (t >= start + before_s) & (t < start + before_s + peak_s)
    co2 = np.where(peak, high, low).astype(np.float64)
    price = np.where(peak, 2400.0, 500.0).astype(np.float64)
    flat = np.full(len(t), 1.0)
    return SignalTrace(t, co2, co2.copy(), price, 300.0 * flat, 60.0 * flat, step_s, origin="drill: grid peak")


# --- Energi Data Service records ---------------------------------------------------------------------------------

def _stamp(t: float) -> tuple[str, str]:
    utc = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    dk = datetime.fromtimestamp(t, DANISH_TIME).strftime("%Y-%m-%dT%H:%M:%S")
    return utc, dk


def to_records(trace: SignalTrace, price_area: str = "DK1") -> dict[str, list[dict[str, Any]]]:
    """The trace as the API's records per dataset (CO2Emis, CO2EmisProg, DayAheadPrices at 15 minutes)."""
    co2: list[dict[str, Any]] = []
    prog: list[dict[str, Any]] = []
    for t, real, fc in zip(trace.t.tolist(), trace.co2.tolist(), trace.co2_forecast.tolist(), strict=True):
        if t % 300:
            continue
        utc, dk = _stamp(t)
        co2.append({"Minutes5UTC": utc, "Minutes5DK": dk, "PriceArea": price_area, "CO2Emission": round(real, 2)})
        prog.append({"Minutes5UTC": utc, "Minutes5DK": dk, "PriceArea": price_area, "CO2Emission": round(fc, 2)})
    prices: list[dict[str, Any]] = []
    quarter = 900.0
    for t, p in zip(trace.t.tolist(), trace.price.tolist(), strict=True):
        if t % quarter:
            continue
        utc, dk = _stamp(t)
        prices.append({"TimeUTC": utc, "TimeDK": dk, "PriceArea": price_area, "DayAheadPriceDKK": round(p, 2),
                       "DayAheadPriceEUR": round(p / 7.46, 2)})
    return {"CO2Emis": co2, "CO2EmisProg": prog, "DayAheadPrices": prices}


def save_records(path: Path, records: dict[str, list[dict[str, Any]]]) -> None:
    path.write_text(json.dumps(records, indent=None, separators=(",", ":")))


def load_trace(path: Path, price_area: str = "DK1", step_s: float = 300.0) -> SignalTrace:
    """A trace from saved API answers ({dataset: records or the API's answer}) on a step_s grid.

    Prices are held over their period (a quarter-hour or an hour); heat demand and supply temperature, which the
    API does not carry, come from the generator's seasonal shape (marked in the trace's origin).
    """
    raw = json.loads(path.read_text())
    series: dict[str, tuple[F64, F64]] = {}
    for name in ("CO2Emis", "CO2EmisProg", "DayAheadPrices", "Elspotprices"):
        if name not in raw:
            continue
        doc = raw[name] if isinstance(raw[name], dict) else {"records": raw[name]}
        points, _ = parse_records(doc, DATASETS[name], price_area, "DKK")
        series[name] = (np.array([p.t for p in points]), np.array([p.value for p in points]))
    if "CO2Emis" not in series:
        raise ValueError(f"{path}: no CO2Emis records")
    t0, t1 = float(series["CO2Emis"][0][0]), float(series["CO2Emis"][0][-1]) + step_s
    t = np.arange(t0, t1, step_s)

    def hold(name: str, fallback: F64) -> F64:
        if name not in series or not len(series[name][0]):
            return fallback
        ts, vs = series[name]
        idx = np.clip(np.searchsorted(ts, t, side="right") - 1, 0, len(ts) - 1)
        return vs[idx]

    co2 = hold("CO2Emis", np.zeros(len(t)))
    base = generate(t0, t1, step_s, seed=0)
    price_name = "DayAheadPrices" if "DayAheadPrices" in series else "Elspotprices"
    return SignalTrace(t, co2, hold("CO2EmisProg", co2), hold(price_name, base.price), base.heat_demand,
                       base.supply_temperature, step_s, origin=f"recorded: {path.name} (heat side generated)")
