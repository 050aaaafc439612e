"""The site model package: one module per section behind bitten.site.model's public names, and sections that say
which variables they read and which names they declare (so a new capability's section needs no change to build)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest

import bitten.site.model as m
from bitten.site import InventoryData, Problem, SiteError, build_site, load_inventory
from bitten.site.locate import Declared, Locator
from bitten.site.model.types import Section, keys

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "inventory" / "lab"

#: the names bitten.site.model offered before it was split into a package (renamed: Lab, Ledger)
_PUBLIC = """ALARM_KINDS AccountMapper Account AlarmAction AlarmKind Bmc Boot COUNTER_QUANTITIES Cdu Coolant Cooling
CoolingAgent CoolingLoop Cpu DEFAULT_ACTIONS DnsLabel DriveLocator FileSystem FreeIpaIdentity GROUP_COMPUTE
GROUP_CONTROLLER GROUP_CPU GROUP_DBD GROUP_GPU GROUP_LOGIN GROUP_UCLOUD Gpu GpuArchitecture HardwareProfile
LEDGER_CHANNELS LabSettings LedgerSource LedgerSources LoopLimits MAC_RE MachinePaymentUnit MachineType ModbusDevice
ModbusType Name NameSuffix Node Partition Payment PaymentInterval QUANTITIES Qos REGISTER_WIDTH Register RegisterMap
Reporting ScriptedFsManagement ScriptedIdentity Site SiteInfo SlurmDatabase SlurmSettings StoragePayment StorageUnit
Strict UCloud UCloudDatabase UCloudSsh UNITS"""
PUBLIC = _PUBLIC.split()


def test_every_public_name_is_importable_from_the_package() -> None:
    missing = [name for name in PUBLIC if not hasattr(m, name)]
    assert missing == []
    assert set(PUBLIC) <= set(m.__all__)


def test_each_site_variable_is_read_by_exactly_one_section() -> None:
    variables = [section.var for section in m.SECTIONS]
    assert len(variables) == len(set(variables))
    fields = {section.field for section in m.SECTIONS}
    assert fields <= set(m.Site.model_fields)


def _declared_seen(data: InventoryData) -> Declared:
    seen: dict[str, set[str]] = {}

    def spy(site: m.Site, locator: Locator, declared: Declared) -> Iterator[Problem]:
        seen.update(declared)
        return iter(())

    build_site(data, (spy,))
    return seen


def test_declared_names_come_from_the_sections() -> None:
    declared = _declared_seen(load_inventory([LAB]))
    assert set(declared) == {"invalid", *(kind for section in m.SECTIONS for kind in section.declares)}
    assert declared["invalid"] == set()
    assert {"gpu", "cpu"} <= declared["partitions"]
    assert "normal" in declared["qos"]


def test_a_new_section_declares_its_names_without_touching_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """A capability's section is a Section in the model: its variable is known, validated and its names declared."""
    widgets = Section("bitten_widgets", "lab", m.LabSettings, "widgets of a coming capability",
                      declares={"widget_networks": keys()})
    monkeypatch.setattr(m, "SECTIONS", (*[s for s in m.SECTIONS if s.var != "bitten_lab"], widgets))
    data = copy.deepcopy(load_inventory([LAB]))
    for hv in data.hostvars.values():
        hv["bitten_widgets"] = hv.pop("bitten_lab")
    declared = _declared_seen(data)
    assert declared["widget_networks"] == {"network", "subnet", "release"}
    for hv in data.hostvars.values():
        hv["bitten_widgets"] = {"network": "Not A Label"}
    with pytest.raises(SiteError) as err:
        build_site(data)
    assert any(p.field == "bitten_widgets.network" for p in err.value.problems), err.value
