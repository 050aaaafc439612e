"""A real Modbus TCP server (pymodbus) with an ECL-style register map: reads, invalid sensors, guarded writes,
and a device that is offline or answers exceptions."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from bitten.cooling.modbus import DeviceError, ModbusMeter, WriteRefused
from bitten.lab.doubles.modbus import ModbusSim
from bitten.site.model import ModbusDevice, RegisterMap

# ECL Comfort 310-style: register = PNU - 1, temperatures x100 (application dependent), 192 degC = open sensor.
# Illustrative addresses in the ECL's 11xxx (circuit 1) range; a real application's PNUs come from its manual.
ECL_MAP = RegisterMap.model_validate({
    "description": "ECL-style district heating controller, circuit 1",
    "block_gap": 2,
    "registers": {
        "outdoor_temperature": {"address": 11199, "function": 4, "type": "int16", "scale": 0.01, "unit": "degC",
                                "invalid": [192]},
        "supply_temperature": {"address": 11200, "function": 4, "type": "int16", "scale": 0.01, "unit": "degC",
                               "invalid": [192]},
        "return_temperature": {"address": 11202, "function": 4, "type": "int16", "scale": 0.01, "unit": "degC",
                               "invalid": [192]},
        "supply_temperature_setpoint": {"address": 11177, "function": 3, "type": "int16", "scale": 1,
                                        "unit": "degC", "writable": True, "min": 10, "max": 110},
        "valve_position": {"address": 11300, "function": 3, "type": "uint16", "unit": "%"},
    },
})


@pytest.fixture
def ecl() -> Iterator[ModbusSim]:
    sim = ModbusSim({5: ECL_MAP}).start()
    sim.set(5, "outdoor_temperature", 192)  # open sensor
    sim.set(5, "supply_temperature", 71.25)
    sim.set(5, "return_temperature", 42.5)
    sim.set(5, "supply_temperature_setpoint", 70)
    sim.set(5, "valve_position", 37)
    yield sim
    sim.stop()


def meter(sim: ModbusSim, unit: int = 5, port: int | None = None) -> ModbusMeter:
    return ModbusMeter("ecl", ModbusDevice(host="127.0.0.1", port=port or sim.port, unit=unit, register_map="ecl"),
                       ECL_MAP, timeout=1.0)


def test_reads_decode_and_flag_open_sensor(ecl: ModbusSim) -> None:
    m = meter(ecl)
    try:
        reading = m.read()
    finally:
        m.close()
    p = reading.points
    assert p["outdoor_temperature"].value is None  # 192 degC: open sensor
    assert p["supply_temperature"].value == pytest.approx(71.25)
    assert p["return_temperature"].value == pytest.approx(42.5)
    assert p["valve_position"].value == 37 and p["valve_position"].unit == "%"
    assert reading.by_quantity("supply_temperature") == pytest.approx(71.25)
    # 11199..11202 is one request thanks to block_gap 2; the holding registers are two more
    assert [(b.function, b.start, b.count) for b in m.blocks] == [(3, 11177, 1), (3, 11300, 1), (4, 11199, 4)]


def test_writes_are_guarded(ecl: ModbusSim) -> None:
    m = meter(ecl)
    try:
        with pytest.raises(WriteRefused, match="disabled"):
            m.write("supply_temperature_setpoint", 65, writes_enabled=False)
        with pytest.raises(WriteRefused, match="read-only"):
            m.write("valve_position", 50, writes_enabled=True)
        with pytest.raises(WriteRefused, match="outside"):
            m.write("supply_temperature_setpoint", 120, writes_enabled=True)
        assert ecl.writes == []
        m.write("supply_temperature_setpoint", 65, writes_enabled=True)
        assert ecl.writes == [(5, "supply_temperature_setpoint", 65.0)]
        assert m.read().points["supply_temperature_setpoint"].value == 65
    finally:
        m.close()


def test_device_exceptions_and_wrong_unit_are_device_errors(ecl: ModbusSim) -> None:
    m = meter(ecl, unit=9)  # no such unit behind this gateway
    try:
        with pytest.raises(DeviceError):
            m.read()
    finally:
        m.close()
    bad = RegisterMap.model_validate({"registers": {"x": {"address": 4000, "function": 4}}})
    m2 = ModbusMeter("ecl", ModbusDevice(host="127.0.0.1", port=ecl.port, unit=5, register_map="bad"), bad,
                     timeout=1.0)
    try:
        with pytest.raises(DeviceError, match="exception"):
            m2.read()  # unmapped address: the device answers ILLEGAL ADDRESS
    finally:
        m2.close()


def test_offline_device_is_a_device_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    m = ModbusMeter("gone", ModbusDevice(host="127.0.0.1", port=port, register_map="ecl"), ECL_MAP, timeout=0.5)
    with pytest.raises(DeviceError, match="cannot connect"):
        m.read()


def test_reconnects_after_idle_timeout(ecl: ModbusSim) -> None:
    m = ModbusMeter("ecl", ModbusDevice(host="127.0.0.1", port=ecl.port, unit=5, register_map="ecl",
                                        idle_timeout_s=0.01), ECL_MAP, timeout=1.0)
    try:
        m.read()
        first = m._client
        import time

        time.sleep(0.05)
        m.read()
        assert m._client is not first  # an ECL drops idle connections: the meter opens a fresh one
    finally:
        m.close()
