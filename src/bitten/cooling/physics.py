"""Heat carried by a coolant: Q = rho * cp * V * dT, with the coolant's own properties.

Properties come, in this order, from fixed values in the configuration, from the CDU's Coolant object
(DensityKgPerCubicMeter, SpecificHeatkJoulesPerKgK), or from the table in ``coolant_data`` (CoolProp reference
values for water and propylene/ethylene glycol mixtures), evaluated at the mean of supply and return temperature.
Every result names where its properties came from, so a report can show it.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

from bitten.cooling.coolant_data import TABLE, TEMPERATURES_C
from bitten.site.model import Coolant


class PhysicsError(ValueError):
    pass


@dataclass(frozen=True)
class Properties:
    density_kg_m3: float
    specific_heat_kj_kg_k: float
    #: "config", "cdu" or "table:<type>-<percent>%@<temperature>C"
    source: str

    @property
    def kw_per_lpm_k(self) -> float:
        """Heat per (L/min * K): rho * cp / 60000."""
        return self.density_kg_m3 * self.specific_heat_kj_kg_k / 60000.0


def _interp(x: float, xs: tuple[float, ...], ys: list[float]) -> float:
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    i = bisect_right(xs, x) - 1
    f = (x - xs[i]) / (xs[i + 1] - xs[i])
    return ys[i] + f * (ys[i + 1] - ys[i])


def table_properties(coolant_type: str, additive_percent: float, temperature_c: float) -> Properties:
    """Density and specific heat of water or a glycol mixture from the CoolProp-derived table.

    Linear in temperature (5 K steps, 1-90 degC) and in the additive's mass fraction (0-60 %). Outside the
    table's temperature range the edge value is used and the source says so.
    """
    if coolant_type not in TABLE:
        raise PhysicsError(f"no properties for coolant type {coolant_type!r}; known: {', '.join(TABLE)}")
    if not math.isfinite(temperature_c):
        raise PhysicsError(f"temperature {temperature_c} is not a number")
    by_fraction = TABLE[coolant_type]
    fractions = tuple(sorted(by_fraction))
    pct = 0.0 if coolant_type == "Water" else additive_percent
    if pct < fractions[0] or pct > fractions[-1]:
        raise PhysicsError(f"{coolant_type} at {pct} % is outside the table (0-{fractions[-1]:g} %)")

    def at(fraction: float) -> tuple[float, float]:
        rows = by_fraction[fraction]
        return (_interp(temperature_c, TEMPERATURES_C, [r[0] for r in rows]),
                _interp(temperature_c, TEMPERATURES_C, [r[1] for r in rows]))

    if pct in by_fraction:
        rho, cp = at(pct)
    else:
        j = bisect_right(fractions, pct)
        lo, hi = fractions[j - 1], fractions[j]
        (r0, c0), (r1, c1) = at(lo), at(hi)
        f = (pct - lo) / (hi - lo)
        rho, cp = r0 + f * (r1 - r0), c0 + f * (c1 - c0)
    clamp = "" if TEMPERATURES_C[0] <= temperature_c <= TEMPERATURES_C[-1] else " (outside table, edge value)"
    label = "Water" if coolant_type == "Water" else f"{coolant_type}-{pct:g}%"
    return Properties(rho, cp, f"table:{label}@{temperature_c:.1f}C{clamp}")


def coolant_properties(coolant: Coolant | None, reported_density: float | None, reported_cp: float | None,
                       temperature_c: float) -> Properties:
    """The properties to use for a loop: configuration first, then what the CDU reports, then the table."""
    if coolant is not None and coolant.density_kg_m3 and coolant.specific_heat_kj_kg_k:
        return Properties(coolant.density_kg_m3, coolant.specific_heat_kj_kg_k, "config")
    if _positive(reported_density) and _positive(reported_cp):
        assert reported_density is not None and reported_cp is not None
        return Properties(reported_density, reported_cp, "cdu")
    if coolant is None:
        coolant = Coolant()
    return table_properties(coolant.type, coolant.additive_percent, temperature_c)


def _positive(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > 0


def heat_kw(props: Properties, flow_lpm: float, delta_t_k: float) -> float:
    """Q [kW] = rho [kg/m3] * cp [kJ/(kg K)] * flow [L/min] / 60000 * dT [K]."""
    return props.kw_per_lpm_k * flow_lpm * delta_t_k


def divergence(computed: float | None, reported: float | None) -> float | None:
    """(computed - reported) / reported, or None when either is missing or the reported heat is ~0."""
    if computed is None or reported is None or abs(reported) < 1e-6:
        return None
    return (computed - reported) / reported
