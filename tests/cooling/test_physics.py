"""Heat physics against CoolProp reference values: within 0.5 % from 20 to 60 degC for water and 25 % PG."""

from __future__ import annotations

import pytest

CP = pytest.importorskip("CoolProp.CoolProp")

from bitten.cooling.physics import (  # noqa: E402
    PhysicsError,
    Properties,
    coolant_properties,
    divergence,
    heat_kw,
    table_properties,
)
from bitten.site.model import Coolant  # noqa: E402

FLUIDS = [("Water", 0.0, "Water"), ("PropyleneGlycol", 25.0, "INCOMP::MPG[0.25]")]


def coolprop(fluid: str, t_c: float) -> tuple[float, float]:
    t = t_c + 273.15
    return CP.PropsSI("D", "T", t, "P", 101325, fluid), CP.PropsSI("C", "T", t, "P", 101325, fluid) / 1000


@pytest.mark.parametrize(("kind", "pct", "fluid"), FLUIDS)
@pytest.mark.parametrize("t_c", [20.0, 22.5, 27.3, 33.0, 40.0, 44.4, 51.7, 58.9, 60.0])
def test_properties_match_coolprop(kind: str, pct: float, fluid: str, t_c: float) -> None:
    rho, cp = coolprop(fluid, t_c)
    props = table_properties(kind, pct, t_c)
    assert props.density_kg_m3 == pytest.approx(rho, rel=0.005)
    assert props.specific_heat_kj_kg_k == pytest.approx(cp, rel=0.005)


@pytest.mark.parametrize(("kind", "pct", "fluid"), FLUIDS)
@pytest.mark.parametrize(("supply", "ret", "flow"), [(20, 26, 120), (30, 40, 42), (35, 47, 200), (45, 60, 80)])
def test_heat_matches_coolprop(kind: str, pct: float, fluid: str, supply: float, ret: float, flow: float) -> None:
    mean = (supply + ret) / 2
    rho, cp = coolprop(fluid, mean)
    reference_kw = rho * cp * flow / 60000 * (ret - supply)
    props = coolant_properties(Coolant(type=kind, additive_percent=pct), None, None, mean)  # type: ignore[arg-type]
    assert heat_kw(props, flow, ret - supply) == pytest.approx(reference_kw, rel=0.005)
    assert props.source.startswith("table:")


def test_reference_note_figures() -> None:
    """The project's notes: ~0.0691 kW per (L/min K) for water at 40 degC, ~0.0669 for 25 % PG."""
    assert table_properties("Water", 0, 40).kw_per_lpm_k == pytest.approx(0.0691, rel=0.005)
    assert table_properties("PropyleneGlycol", 25, 40).kw_per_lpm_k == pytest.approx(0.0669, rel=0.005)


def test_between_tabulated_fractions_stays_close() -> None:
    rho, cp = coolprop("INCOMP::MPG[0.22]", 35.0)
    props = table_properties("PropyleneGlycol", 22, 35.0)
    assert props.density_kg_m3 * props.specific_heat_kj_kg_k == pytest.approx(rho * cp, rel=0.005)


def test_property_priority_config_then_cdu_then_table() -> None:
    fixed = Coolant(type="Water", density_kg_m3=1000, specific_heat_kj_kg_k=4.0)
    assert coolant_properties(fixed, 1030, 3.974, 35).source == "config"
    assert coolant_properties(Coolant(), 1030, 3.974, 35) == Properties(1030, 3.974, "cdu")
    assert coolant_properties(Coolant(), None, 3.974, 35).source.startswith("table:Water")
    assert coolant_properties(Coolant(), float("nan"), 3.974, 35).source.startswith("table:")


def test_fixture_divergence_is_what_the_notes_say() -> None:
    """DMTF mockup primary side: 42 L/min at 10 K with rho 1030, cp 3.974 -> ~28.7 kW against 25.48 reported."""
    computed = heat_kw(Properties(1030, 3.974, "cdu"), 42, 10)
    assert computed == pytest.approx(28.65, abs=0.05)
    ratio = divergence(computed, 25.48)
    assert ratio is not None and ratio == pytest.approx(0.1245, abs=0.001)
    assert divergence(computed, 0.0) is None and divergence(None, 1.0) is None


def test_bad_inputs_raise() -> None:
    with pytest.raises(PhysicsError):
        table_properties("Brine", 0, 30)
    with pytest.raises(PhysicsError):
        table_properties("PropyleneGlycol", 80, 30)
    with pytest.raises(PhysicsError):
        table_properties("Water", 0, float("nan"))
    assert "outside table" in table_properties("Water", 0, 120).source
