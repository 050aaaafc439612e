"""Modbus TCP devices (heat meters, electricity and water meters, Danfoss ECL controllers) read through a
register map that is configuration: address, function, data type, scale, unit, read-only or writable.

Reads are planned as few requests as the map allows (contiguous registers of one function, at most
``max_block`` registers a request); values are decoded with pymodbus and converted to canonical units.
A value the map declares invalid (an ECL's 192 degC open sensor), that is not finite, or that is outside the
plausible range of its dimension (bitten.site.model.Plausibility) reads as None, with the reason in
``Point.problem``.
Writes go only to registers the map marks writable, only within their [min, max], and only when the caller
says writes are enabled: the agent is read-only towards the plant by default.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusException

from bitten.cooling.errors import DeviceError, WriteRefused
from bitten.cooling.units import to_canonical
from bitten.site.model import UNITS, ModbusDevice, Plausibility, Register, RegisterMap

__all__ = ["DeviceError", "MeterReading", "ModbusMeter", "Point", "WriteRefused", "decode", "encode", "plan_blocks"]


@dataclass(frozen=True)
class Block:
    function: int
    start: int
    count: int
    names: tuple[str, ...]


def plan_blocks(rmap: RegisterMap) -> list[Block]:
    """Group the map's registers into as few read requests as its max_block and block_gap allow."""
    blocks: list[Block] = []
    by_function: dict[int, list[tuple[int, int, str]]] = {}
    for name, reg in rmap.registers.items():
        by_function.setdefault(reg.function, []).append((reg.address, reg.count, name))
    for function in sorted(by_function):
        start = end = -1
        names: list[str] = []
        for address, count, name in sorted(by_function[function]):
            last = address + count  # exclusive
            if names and address - end <= rmap.block_gap and last - start <= rmap.max_block:
                end = max(end, last)
                names.append(name)
                continue
            if names:
                blocks.append(Block(function, start, end - start, tuple(names)))
            start, end, names = address, last, [name]
        if names:
            blocks.append(Block(function, start, end - start, tuple(names)))
    return blocks


_DATATYPES = {
    "int16": ModbusTcpClient.DATATYPE.INT16, "uint16": ModbusTcpClient.DATATYPE.UINT16,
    "int32": ModbusTcpClient.DATATYPE.INT32, "uint32": ModbusTcpClient.DATATYPE.UINT32,
    "int64": ModbusTcpClient.DATATYPE.INT64, "uint64": ModbusTcpClient.DATATYPE.UINT64,
    "float32": ModbusTcpClient.DATATYPE.FLOAT32, "float64": ModbusTcpClient.DATATYPE.FLOAT64,
}


def decode(reg: Register, words: list[int], default_word_order: str = "big") -> float | None:
    """Engineering value of one register from its raw 16-bit words (None when invalid or not finite)."""
    if len(words) != reg.count:
        raise DeviceError(f"expected {reg.count} register(s), got {len(words)}")
    order = reg.word_order or default_word_order
    raw = ModbusTcpClient.convert_from_registers(words, _DATATYPES[reg.type], word_order=order)  # type: ignore[arg-type]
    assert isinstance(raw, int | float)
    value = float(raw) * reg.scale + reg.offset
    if not math.isfinite(value):
        return None
    if any(math.isclose(value, bad, rel_tol=0, abs_tol=abs(reg.scale) / 2) for bad in reg.invalid):
        return None
    return value


def encode(reg: Register, value: float) -> int:
    """The 16-bit word to write for an engineering value (writable registers are 16-bit)."""
    raw = round((value - reg.offset) / reg.scale)
    if reg.type == "int16":
        if not -32768 <= raw <= 32767:
            raise WriteRefused(f"{value} does not fit an int16 register at scale {reg.scale}")
        return raw & 0xFFFF
    if not 0 <= raw <= 65535:
        raise WriteRefused(f"{value} does not fit a uint16 register at scale {reg.scale}")
    return raw


@dataclass
class Point:
    """One decoded register: its value in canonical units (None: no valid reading, and ``problem`` says why)."""

    value: float | None
    unit: str
    quantity: str | None
    problem: str | None = None


@dataclass
class MeterReading:
    device: str
    timestamp: float
    points: dict[str, Point] = field(default_factory=dict)

    def by_quantity(self, quantity: str) -> float | None:
        for point in self.points.values():
            if point.quantity == quantity and point.value is not None:
                return point.value
        return None


ClientFactory = Callable[[ModbusDevice, float], ModbusTcpClient]


def _client(device: ModbusDevice, timeout: float) -> ModbusTcpClient:
    return ModbusTcpClient(device.host, port=device.port, timeout=timeout, retries=1, reconnect_delay=0)


class ModbusMeter:
    """A Modbus TCP device and its register map; one TCP connection, reopened after idling."""

    def __init__(self, name: str, device: ModbusDevice, rmap: RegisterMap, *, timeout: float = 3.0,
                 client_factory: ClientFactory = _client, plausibility: Plausibility | None = None,
                 deadline_s: float | None = None) -> None:
        self.name = name
        self.device = device
        self.rmap = rmap
        self.timeout = timeout
        self.limits = plausibility or Plausibility()
        #: wall-clock limit of one read (every block): a slow device fails its read instead of holding it
        self.deadline_s = deadline_s if deadline_s is not None else 2 * timeout
        self.blocks = plan_blocks(rmap)
        self._factory = client_factory
        self._client: ModbusTcpClient | None = None
        self._last_used = 0.0

    def _connected(self) -> ModbusTcpClient:
        now = time.monotonic()
        if self._client is not None and now - self._last_used > self.device.idle_timeout_s:
            self.close()  # the device may have dropped the idle connection: start afresh
        if self._client is None:
            client = self._factory(self.device, self.timeout)
            if not client.connect():  # type: ignore[no-untyped-call]
                client.close()  # type: ignore[no-untyped-call]
                raise DeviceError(f"{self.name}: cannot connect to {self.device.host}:{self.device.port}")
            self._client = client
        self._last_used = now
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()  # type: ignore[no-untyped-call]
            self._client = None

    def _read_block(self, client: ModbusTcpClient, block: Block) -> list[int]:
        read = client.read_input_registers if block.function == 4 else client.read_holding_registers
        try:
            response = read(block.start, count=block.count, device_id=self.device.unit)
        except ModbusException as exc:
            self.close()
            raise DeviceError(f"{self.name}: reading {block.count} register(s) at {block.start}: {exc}") from exc
        if response.isError():
            raise DeviceError(f"{self.name}: device answered an exception to function {block.function} at "
                              f"{block.start} (count {block.count}): {response}")
        words = list(response.registers)
        if len(words) != block.count:
            raise DeviceError(f"{self.name}: asked for {block.count} registers at {block.start}, got {len(words)}")
        return words

    def read(self) -> MeterReading:
        deadline = time.monotonic() + self.deadline_s
        client = self._connected()
        reading = MeterReading(self.name, time.time())
        for block in self.blocks:
            if time.monotonic() > deadline:
                self.close()
                raise DeviceError(f"{self.name}: read deadline of {self.deadline_s:g} s passed")
            words = self._read_block(client, block)
            for name in block.names:
                reg = self.rmap.registers[name]
                offset = reg.address - block.start
                value = decode(reg, words[offset:offset + reg.count], self.rmap.word_order)
                unit, problem = reg.unit, None
                if value is None:
                    problem = "no valid reading (a value the map declares invalid, or not finite)"
                else:
                    value, unit = to_canonical(value, reg.unit)
                    bounds = self.limits.for_dimension(UNITS[reg.unit][0])
                    if bounds is not None and value not in bounds:
                        problem = f"{value:g} {unit} is implausible (outside [{bounds.min:g}, {bounds.max:g}])"
                        value = None
                reading.points[name] = Point(value, unit, self.rmap.quantity_of(name), problem)
        return reading

    def write(self, register: str, value: float, *, writes_enabled: bool) -> None:
        """Write an engineering value to a writable register, within the map's [min, max]."""
        if not writes_enabled:
            raise WriteRefused("writes to the cooling equipment are disabled (bitten_cooling.agent.writes_enabled)")
        reg = self.rmap.registers.get(register)
        if reg is None:
            raise WriteRefused(f"{self.name}: no register {register!r} in its map")
        if not reg.writable:
            raise WriteRefused(f"{self.name}: register {register} is read-only in its map")
        assert reg.min is not None and reg.max is not None
        if not (math.isfinite(value) and reg.min <= value <= reg.max):
            raise WriteRefused(f"{self.name}: {value} is outside {register}'s allowable range [{reg.min}, {reg.max}]")
        word = encode(reg, value)
        client = self._connected()
        try:
            response = client.write_register(reg.address, word, device_id=self.device.unit)
        except ModbusException as exc:
            self.close()
            raise DeviceError(f"{self.name}: writing {register}: {exc}") from exc
        if response.isError():
            raise DeviceError(f"{self.name}: device refused the write to {register}: {response}")
