"""Register maps are configuration with a schema: decoding, block planning, and the errors a bad map gets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from bitten.capabilities import load_site
from bitten.cooling.modbus import DeviceError, WriteRefused, decode, encode, plan_blocks
from bitten.lab.doubles.modbus import encode_value
from bitten.site import SiteError
from bitten.site.model import Register, RegisterMap

REPO = Path(__file__).resolve().parents[2]


def rmap(registers: dict[str, Any], **kw: Any) -> RegisterMap:
    return RegisterMap.model_validate({"registers": registers, **kw})


@pytest.mark.parametrize(("typ", "words", "expected"), [
    ("int16", [0xFFFE], -2), ("uint16", [0xFFFE], 65534), ("int32", [0xFFFF, 0xFFFF], -1),
    ("uint32", [0x0001, 0x0000], 65536), ("float32", [0x4148, 0x0000], 12.5),
    ("uint64", [0, 0, 1, 0], 65536), ("float64", [0x4029, 0, 0, 0], 12.5),
])
def test_decode_types(typ: str, words: list[int], expected: float) -> None:
    assert decode(Register(address=0, type=typ), words) == expected  # type: ignore[arg-type]


def test_decode_scale_offset_word_order_and_invalid() -> None:
    assert decode(Register(address=0, type="int16", scale=0.01, unit="degC"), [2345]) == pytest.approx(23.45)
    assert decode(Register(address=0, type="uint16", scale=0.1, offset=-40, unit="degC"), [700]) == pytest.approx(30)
    assert decode(Register(address=0, type="uint32", word_order="little"), [0x0000, 0x0001]) == 65536
    # an ECL reads 192 degC for an open sensor: the map declares it invalid
    assert decode(Register(address=0, type="int16", scale=0.01, unit="degC", invalid=(192.0,)), [19200]) is None
    assert decode(Register(address=0, type="float32"), [0x7FC0, 0]) is None  # NaN
    with pytest.raises(DeviceError):
        decode(Register(address=0, type="uint32"), [1])


def test_encode_roundtrip_and_limits() -> None:
    m = rmap({"t": {"address": 0, "type": "int16", "scale": 0.1, "unit": "degC"},
              "f": {"address": 1, "type": "float32", "unit": "kW"}})
    assert decode(m.registers["t"], encode_value(m, "t", -12.3)) == pytest.approx(-12.3)
    assert decode(m.registers["f"], encode_value(m, "f", 1.5)) == 1.5
    with pytest.raises(WriteRefused):
        encode(Register(address=0, type="uint16", scale=0.1), 7000.0)


def test_plan_blocks_joins_contiguous_and_respects_max_block() -> None:
    regs = {f"r{i}": {"address": i, "function": 4} for i in range(200)}
    regs["far"] = {"address": 1000, "function": 4}
    regs["hold"] = {"address": 0, "function": 3, "type": "uint32"}
    blocks = plan_blocks(rmap(regs))
    assert [(b.function, b.start, b.count) for b in blocks] == [(3, 0, 2), (4, 0, 123), (4, 123, 77), (4, 1000, 1)]
    gapped = plan_blocks(rmap({"a": {"address": 0, "function": 4}, "b": {"address": 5, "function": 4}}, block_gap=4))
    assert [(b.start, b.count, b.names) for b in gapped] == [(0, 6, ("a", "b"))]
    assert len(plan_blocks(rmap({"a": {"address": 0}, "b": {"address": 5}}))) == 2


@pytest.mark.parametrize(("registers", "message"), [
    ({"x": {"address": 0, "unit": "furlongs"}}, "unknown unit"),
    ({"x": {"address": 0, "unit": "kW", "quantity": "flow"}}, "does not measure flow"),
    ({"x": {"address": 0, "writable": True}}, "min <= max"),
    ({"x": {"address": 0, "function": 4, "writable": True, "min": 0, "max": 1}}, "holding registers"),
    ({"x": {"address": 0, "type": "uint32", "writable": True, "min": 0, "max": 1}}, "int16/uint16"),
    ({"x": {"address": 0, "type": "uint32"}, "y": {"address": 1}}, "overlap"),
    ({"x": {"address": 70000}}, "less than or equal"),
    ({"x": {"address": 0, "function": 6}}, "Input should be 3 or 4"),
    ({"x": {"address": 0, "quantity": "vibes"}}, "unknown quantity"),
    ({"x": {"address": 0, "scale": 0}}, "scale"),
])
def test_bad_maps_are_rejected(registers: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        rmap(registers)


def test_quantity_defaults_to_known_names() -> None:
    m = rmap({"flow": {"address": 0, "unit": "m3/h"}, "energy": {"address": 1, "unit": "kWh"},
              "e2": {"address": 2, "unit": "kWh", "quantity": "heat_energy"}})
    assert (m.quantity_of("flow"), m.quantity_of("energy"), m.quantity_of("e2")) == ("flow", None, "heat_energy")


def _copy_inventory(tmp_path: Path, edit: Any) -> Path:
    import shutil

    inv = tmp_path / "inv"
    shutil.copytree(REPO / "inventory" / "lab", inv)
    path = inv / "group_vars" / "all" / "cooling.yml"
    data = yaml.safe_load(path.read_text())
    edit(data["bitten_cooling"])
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return inv


def test_site_errors_name_file_field_and_fix(tmp_path: Path) -> None:
    def edit(c: dict[str, Any]) -> None:
        c["register_maps"]["heat_meter"]["registers"]["flow"]["unit"] = "gallons"
        c["loops"]["lab-loop"]["actions"] = {"leak": {"resume_on_clear": True}}

    with pytest.raises(SiteError) as err:
        load_site(_copy_inventory(tmp_path, edit))
    text = str(err.value)
    assert "cooling.yml" in text
    assert "bitten_cooling.register_maps.heat_meter.registers.flow.unit" in text and "unknown unit 'gallons'" in text
    assert "leak: resume_on_clear cannot be true" in text


def test_ledger_device_must_exist(tmp_path: Path) -> None:
    def edit(c: dict[str, Any]) -> None:
        c["ledger"]["it_energy"] = [{"device": "nope", "register": "energy"}]

    with pytest.raises(SiteError) as err:
        load_site(_copy_inventory(tmp_path, edit))
    problems = {p.field: p for p in err.value.problems}
    problem = problems["bitten_cooling.ledger.it_energy[0].device"]
    assert "Modbus device 'nope' is not defined" in problem.message and problem.fix
    assert problem.file.endswith("cooling.yml") or ":" in problem.file


def test_ledger_register_quantity_is_checked(tmp_path: Path) -> None:
    def edit(c: dict[str, Any]) -> None:
        c["ledger"] = {"reused_heat": [{"device": "lab-meter", "register": "supply_temperature"}]}

    with pytest.raises(SiteError, match="measures supply_temperature, but reused_heat needs heat_energy or heat_power"):
        load_site(_copy_inventory(tmp_path, edit))
