"""Node power, energy and coolant heat from Redfish (DMTF's public-rackmount1 mockup, extended per the 2025.4
CSDL with EnergykWh, CoolantConnectors and a rack PDU), through bitten's Redfish client, into the ledger."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bitten.cooling.ledger import Ledger
from bitten.core.redfish.connection import Connection
from bitten.core.redfish.credentials import Credentials
from bitten.core.redfish.endpoint import Endpoint, Timeouts
from bitten.core.retry import Backoff
from bitten.energy.nodepower import NodePowerPoller, ReadingError, read_node, read_pdu
from bitten.lab.doubles.mockup import serve_mockup
from bitten.lab.httpserve import base_url, in_thread

MOCKUP = Path(__file__).resolve().parents[1] / "fixtures" / "redfish-mockups" / "public-rackmount1"
CHASSIS = "Chassis/1U"


def write(root: Path, rel: str, doc: dict[str, Any]) -> None:
    path = root / rel / "index.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def edit(root: Path, rel: str, change: dict[str, Any]) -> None:
    path = root / rel / "index.json"
    doc = json.loads(path.read_text())
    doc.update(change)
    path.write_text(json.dumps(doc))


@pytest.fixture
def mockup(tmp_path: Path) -> Path:
    root = tmp_path / "mockup"
    shutil.copytree(MOCKUP, root)
    edit(root, f"{CHASSIS}/EnvironmentMetrics", {"EnergykWh": {
        "Reading": 12.5, "LifetimeReading": 3120.25, "SensorResetTime": "2026-01-01T00:00:00Z",
        "DataSourceUri": "/redfish/v1/Chassis/1U/Sensors/Energy"}})
    cc = f"{CHASSIS}/ThermalSubsystem/CoolantConnectors"
    edit(root, f"{CHASSIS}/ThermalSubsystem", {"CoolantConnectors": {"@odata.id": f"/redfish/v1/{cc}"}})
    write(root, cc, {"@odata.type": "#CoolantConnectorCollection.CoolantConnectorCollection",
                     "Members": [{"@odata.id": f"/redfish/v1/{cc}/A"}], "Members@odata.count": 1})
    write(root, f"{cc}/A", {"@odata.type": "#CoolantConnector.v1_2_0.CoolantConnector", "Id": "A",
                            "FlowLitersPerMinute": {"Reading": 12.0}, "SupplyTemperatureCelsius": {"Reading": 40.0},
                            "ReturnTemperatureCelsius": {"Reading": 50.5}, "HeatRemovedkW": {"Reading": 0.31}})
    pdu = "PowerEquipment/RackPDUs/1"
    write(root, pdu, {"@odata.type": "#PowerDistribution.v1_4_0.PowerDistribution", "Id": "1",
                      "Metrics": {"@odata.id": f"/redfish/v1/{pdu}/Metrics"},
                      "Outlets": {"@odata.id": f"/redfish/v1/{pdu}/Outlets"}})
    write(root, f"{pdu}/Metrics", {"@odata.type": "#PowerDistributionMetrics.v1_3_0.PowerDistributionMetrics",
                                   "PowerWatts": {"Reading": 5120.0}, "EnergykWh": {"Reading": 88000.0}})
    write(root, f"{pdu}/Outlets", {"Members": [{"@odata.id": f"/redfish/v1/{pdu}/Outlets/A1"}]})
    write(root, f"{pdu}/Outlets/A1", {"@odata.type": "#Outlet.v1_4_0.Outlet", "Id": "A1",
                                      "PowerWatts": {"Reading": 380.0}, "EnergykWh": {"Reading": 1500.5}})
    return root


@pytest.fixture
def served(mockup: Path) -> Iterator[str]:
    server = serve_mockup(mockup)
    in_thread(server)
    yield base_url(server)
    server.shutdown()
    server.server_close()


def connect(url: str) -> Connection:
    return Connection(Endpoint("n1", url, "437XR1138R2", "generic"), Credentials("u", "p"),
                      timeouts=Timeouts(connect=1, read=2, request=3), retry=Backoff(attempts=1))


def test_reads_power_energy_and_coolant(served: str) -> None:
    r = read_node(connect(served), "n1", "1U", max_w=2000)
    assert r.power_w is not None and r.power_w.value == 374
    assert r.power_w.provenance == "/redfish/v1/Chassis/1U/EnvironmentMetrics#PowerWatts"
    assert r.energy_kwh is not None and r.energy_kwh.value == 3120.25  # LifetimeReading: never reset
    assert r.energy_kwh.provenance.endswith("#EnergykWh.LifetimeReading")
    assert r.reset_time == "2026-01-01T00:00:00Z"
    assert [(c.id, c.flow_lpm, c.supply_c, c.return_c, c.heat_kw) for c in r.coolant] == [("A", 12, 40, 50.5, 0.31)]
    assert r.heat_kw is not None and r.heat_kw.value == pytest.approx(0.31) and r.garbage == []


def test_garbage_and_implausible_values_are_not_used(mockup: Path, served: str) -> None:
    edit(mockup, f"{CHASSIS}/EnvironmentMetrics", {"PowerWatts": {"Reading": 99999}, "EnergykWh": {"Reading": "x"}})
    edit(mockup, f"{CHASSIS}/ThermalSubsystem/CoolantConnectors/A", {"SupplyTemperatureCelsius": {"Reading": 192}})
    r = read_node(connect(served), "n1", "1U", max_w=2000)
    # PowerWatts out of range; of the two power supplies only Bay1 reports its input power: no partial sum either
    assert r.power_w is None
    assert r.energy_kwh is None
    assert "PowerWatts.Reading=99999" in r.garbage and "EnergykWh.Reading='x'" in r.garbage
    assert r.coolant[0].supply_c is None and "SupplyTemperatureCelsius.Reading=192" in r.garbage


def test_power_supplies_stand_in_for_a_missing_power_reading(mockup: Path, served: str) -> None:
    env = mockup / CHASSIS / "EnvironmentMetrics" / "index.json"
    doc = json.loads(env.read_text())
    del doc["PowerWatts"]
    env.write_text(json.dumps(doc))
    bay2 = f"{CHASSIS}/PowerSubsystem/PowerSupplies/Bay2"
    edit(mockup, bay2, {"Metrics": {"@odata.id": f"/redfish/v1/{bay2}/Metrics"}})
    write(mockup, f"{bay2}/Metrics", {"@odata.type": "#PowerSupplyMetrics.v1_1_0.PowerSupplyMetrics",
                                      "InputPowerWatts": {"Reading": 62.6}})
    r = read_node(connect(served), "n1", "1U", max_w=2000)
    assert r.power_w is not None and r.power_w.value == pytest.approx(937.4 + 62.6)
    assert "sum of 2 PowerSupplyMetrics#InputPowerWatts" in r.power_w.provenance


def test_not_a_chassis_fails_the_poll(mockup: Path, served: str) -> None:
    edit(mockup, CHASSIS, {"@odata.type": "#ComputerSystem.v1_20_0.ComputerSystem"})
    with pytest.raises(ReadingError, match="is not a Chassis"):
        read_node(connect(served), "n1", "1U", max_w=2000)


def test_rack_pdu(served: str) -> None:
    r = read_pdu(connect(served), "pdu-a", "1")
    assert r.power_w == 5120 and r.energy_kwh == 88000 and r.outlets == {"A1": (380.0, 1500.5)}


def test_poller_records_with_provenance_and_goes_stale(served: str, tmp_path: Path) -> None:
    clock = [1_800_000_000.0]
    ledger = Ledger(tmp_path / "nodes.sqlite")
    down = "http://127.0.0.1:9"
    poller = NodePowerPoller({"n1": lambda: connect(served), "n2": lambda: connect(down)}, ledger,
                             chassis_id="1U", stale_after_s=60, max_w={"n1": 2000, "n2": 2000},
                             pdus={"pdu-a": (lambda: connect(served), "1", {"A1": "n1"})}, clock=lambda: clock[0])
    poller.poll()
    clock[0] += 30
    poller.poll()
    total = ledger.total("node_energy", clock[0] - 60, clock[0] + 1, source="n1")
    assert total.value == 0.0 and total.sources == {"n1": "difference of the meter's counter"}
    assert ledger.provenance("node_energy") == {
        "n1": "BMC /redfish/v1/Chassis/1U/EnvironmentMetrics#EnergykWh.LifetimeReading",
        "pdu:pdu-a/A1": "n1: rack PDU pdu-a outlet A1 EnergykWh"}
    assert ledger.provenance("node_heat") == {"n1": "BMC 1 CoolantConnector(s)#HeatRemovedkW"}
    assert poller.nodes["n2"].errors_total == 2 and poller.nodes["n1"].errors_total == 0
    assert poller.alarms() == {}
    clock[0] += 61
    alarms = poller.alarms()
    assert set(alarms) == {"n2"} or set(alarms) == {"n1", "n2"}
    assert "never answered" in alarms["n2"]
    poller.close()


def test_the_controller_polls_the_bmcs_into_its_ledger(served: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from bitten.energy.config import BmcEntry, ControllerConfig, NodePowerEntry
    from bitten.energy.controller import Controller

    from .memory_slurm import MemorySlurm

    class NoCooling:
        def read(self) -> tuple[dict[str, list[str]], str]:
            return {}, ""

    cfg = ControllerConfig(site="t", state_dir=str(tmp_path / "state"), node_power=NodePowerEntry(
        chassis_id="1U", nodes={"n1": BmcEntry(url=served, flavour="generic", max_w=2000)}))
    monkeypatch.delenv("BITTEN_BMC_CREDENTIALS", raising=False)
    monkeypatch.delenv("BITTEN_BMC_USERNAME", raising=False)
    monkeypatch.delenv("BITTEN_BMC_PASSWORD", raising=False)
    without = Controller(cfg, slurm=MemorySlurm(), cooling=NoCooling())  # type: ignore[arg-type]
    assert without.nodepower is None  # no credentials: not polled (attribution then estimates)
    without.close()
    monkeypatch.setenv("BITTEN_BMC_USERNAME", "reader")
    monkeypatch.setenv("BITTEN_BMC_PASSWORD", "not-a-real-password")
    ctl = Controller(cfg, slurm=MemorySlurm(), cooling=NoCooling())  # type: ignore[arg-type]
    ctl.run(cycles=1)
    ctl.close()
    ledger = Ledger(cfg.nodes_ledger_path)
    assert ledger.provenance("node_energy") == {
        "n1": "BMC /redfish/v1/Chassis/1U/EnvironmentMetrics#EnergykWh.LifetimeReading"}
