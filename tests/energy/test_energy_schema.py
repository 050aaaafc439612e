"""bitten_energy in the site model: the reference site's policies load; the model's own rules."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bitten.capabilities import load_site
from bitten.site import model as m

from conftest import INVENTORIES


def test_reference_site_policies() -> None:
    site = load_site(INVENTORIES / "bitten")
    energy = site.energy
    assert energy.controller.mode == "shadow"
    assert [p.name for p in energy.policies] == ["grid-peak-cap", "grid-peak-hold", "hotter-water"]
    cap = energy.policies[0].action
    assert isinstance(cap, m.GpuCapAction) and cap.partition == "gpu" and cap.watts_per_gpu == 700
    assert energy.signals.grid is not None and energy.signals.grid.price_dataset == "DayAheadPrices"
    assert site.energy_controller_hosts == ["ctl01"]


def test_shadow_is_the_default() -> None:
    assert m.Energy().controller.mode == "shadow"
    assert m.Site.model_fields["energy"].default_factory is not None


def test_no_energy_section_no_controller() -> None:
    site = load_site(INVENTORIES / "lab")
    assert site.energy_controller_hosts == [] or site.energy.policies


@pytest.mark.parametrize("raw, message", [
    ({"signal": "co2"}, "give exactly one of above, below or top_hours"),
    ({"signal": "co2", "above": 1, "below": 0}, "got above, below"),
    ({"signal": "heat_demand", "top_hours": 2}, "top_hours applies to the price signal only"),
    ({"signal": "price", "top_hours": 24}, "less than or equal to 23"),
    ({"signal": "co2", "above": 100, "hysteresis": -1}, "greater than or equal to 0"),
])
def test_trigger_rules(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        m.Trigger.model_validate(raw)


def test_policy_needs_a_trigger_and_unique_names() -> None:
    action = {"type": "hold", "qos": "flex"}
    with pytest.raises(ValidationError, match="at least one trigger"):
        m.Policy.model_validate({"name": "p", "when": [], "action": action})
    policy = {"name": "p", "when": [{"signal": "co2", "above": 1}], "action": action}
    with pytest.raises(ValidationError, match="policy names must be unique: p"):
        m.Energy.model_validate({"policies": [policy, policy]})


def test_gpu_power_range() -> None:
    base = {"model": "B200", "slurm_type": "b200", "count": 8, "architecture": "blackwell", "memory_gb": 180}
    with pytest.raises(ValidationError, match="min_power_watts 1200 is above max_power_watts 1000"):
        m.Gpu.model_validate({**base, "max_power_watts": 1000, "min_power_watts": 1200})


def test_grid_deadline_covers_one_request() -> None:
    with pytest.raises(ValidationError, match="deadline_s 5 is shorter than one request"):
        m.GridSignals(timeout_s=10, deadline_s=5)
