"""Two controllers: both SlurmctldHost lines, a StateSaveLocation both reach, the takeover timeout in slurm.conf."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bitten.capabilities import build_site, render_file
from bitten.site import InventoryData, SiteError, load_inventory

from conftest import BROKEN


def _data(**slurm: Any) -> InventoryData:
    data = load_inventory([BROKEN / "_base"])
    out = copy.deepcopy(data)
    out.groups["slurm_controller"] = ["ctl", "dbd"]
    for hv in out.hostvars.values():
        hv["bitten_slurm"] = {**hv["bitten_slurm"], **slurm}
    return out


def test_two_controllers_need_a_shared_state_save_location() -> None:
    with pytest.raises(SiteError) as info:
        build_site(_data())
    problem = next(p for p in info.value.problems if p.field == "bitten_slurm.state_save_location")
    assert "two controllers (ctl, dbd) need a StateSaveLocation both reach" in problem.message
    assert "shared storage" in (problem.fix or "")


def test_ha_slurm_conf_has_primary_backup_and_the_shared_state() -> None:
    site = build_site(_data(state_save_location="/shared/slurm/state", slurmctld_timeout=30))
    text = render_file(site, "/etc/slurm/slurm.conf", "gpu01")
    lines = text.splitlines()
    assert lines.index("SlurmctldHost=ctl") < lines.index("SlurmctldHost=dbd")
    assert "StateSaveLocation=/shared/slurm/state" in lines
    assert "SlurmctldTimeout=30" in lines
    assert "# dbd is the backup: it takes control when ctl has not answered for this long," in lines


def test_one_controller_keeps_the_local_state_directory() -> None:
    data = load_inventory([BROKEN / "_base"])
    text = render_file(build_site(data), "/etc/slurm/slurm.conf", "ctl")
    assert "StateSaveLocation=/var/lib/slurm/slurmctld\n" in text and "SlurmctldTimeout=120\n" in text
    assert "is the backup" not in text


@pytest.mark.parametrize("bad", ["relative/path", "/with space"])
def test_state_save_location_is_an_absolute_path(bad: str) -> None:
    with pytest.raises(SiteError, match="state_save_location"):
        build_site(_data(state_save_location=bad))
