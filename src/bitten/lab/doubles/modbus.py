"""A Modbus TCP server (pymodbus) that serves values through a register map: the lab's heat and electricity
meters, and the tests' ECL-style controller. Values are set in engineering units and encoded with the same map
the agent decodes with; writes are accepted only to registers the map marks writable, within their [min, max]
(anything else answers ILLEGAL VALUE), as a careful device would."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from pymodbus.client import ModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import SimData, SimDevice
from pymodbus.simulator.simutils import DataType

from bitten.cooling.modbus import _DATATYPES, decode, plan_blocks
from bitten.site.model import RegisterMap


def encode_value(rmap: RegisterMap, name: str, value: float) -> list[int]:
    reg = rmap.registers[name]
    raw: float = (value - reg.offset) / reg.scale
    number: int | float = raw if reg.type.startswith("float") else round(raw)
    words = ModbusTcpClient.convert_to_registers(number, _DATATYPES[reg.type],
                                                 word_order=reg.word_order or rmap.word_order)
    return list(words)


class ModbusSim:
    """Serve one register map per unit id on host:port, in a thread of its own."""

    def __init__(self, units: dict[int, RegisterMap], host: str = "127.0.0.1", port: int = 0) -> None:
        self.units = units
        self.host, self.port = host, port
        self.words: dict[tuple[int, int, int], int] = {}  # (unit, function, address) -> word
        self.lock = threading.Lock()
        self.writes: list[tuple[int, str, float]] = []
        self._loop = asyncio.new_event_loop()
        self._server: ModbusTcpServer | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modbus-sim", daemon=True)

    def _device(self, unit: int, rmap: RegisterMap) -> SimDevice:
        # the device answers for exactly the spans the agent reads (the map's registers, joined across block_gap);
        # a read beyond them gets ILLEGAL ADDRESS, as from a real device
        blocks: dict[int, list[SimData]] = {3: [], 4: []}
        for block in plan_blocks(rmap):
            blocks[block.function].append(SimData(block.start, count=block.count, datatype=DataType.REGISTERS,
                                                  readonly=block.function == 4))
        if not blocks[3]:
            blocks[3].append(SimData(65000, count=1, datatype=DataType.REGISTERS, readonly=True))
        if not blocks[4]:
            blocks[4].append(SimData(65000, count=1, datatype=DataType.REGISTERS, readonly=True))
        bits = [SimData(0, count=1, datatype=DataType.BITS)]

        async def action(fc: int, start: int, address: int, count: int, regs: list[int],
                         set_values: Any) -> ExcCodes | None:
            function = 4 if fc == 4 else 3
            if set_values is None:
                with self.lock:
                    for i in range(count):
                        regs[address - start + i] = self.words.get((unit, function, address + i), 0)
                return None
            return self._write(unit, rmap, address, list(set_values))

        return SimDevice(id=unit, simdata=(bits, bits, sorted(blocks[3], key=lambda d: d.address),
                                           sorted(blocks[4], key=lambda d: d.address)), action=action)

    def _write(self, unit: int, rmap: RegisterMap, address: int, values: list[int]) -> ExcCodes | None:
        for name, reg in rmap.registers.items():
            if reg.function == 3 and reg.address == address and reg.writable and len(values) == reg.count:
                value = decode(reg, values, rmap.word_order)
                if value is None or reg.min is None or reg.max is None or not reg.min <= value <= reg.max:
                    return ExcCodes.ILLEGAL_VALUE
                with self.lock:
                    self.words[(unit, 3, address)] = values[0]
                    self.writes.append((unit, name, value))
                return None
        return ExcCodes.ILLEGAL_ADDRESS

    def set(self, unit: int, name: str, value: float) -> None:
        rmap = self.units[unit]
        reg = rmap.registers[name]
        words = encode_value(rmap, name, value)
        with self.lock:
            for i, word in enumerate(words):
                self.words[(unit, reg.function, reg.address + i)] = word

    def set_raw(self, unit: int, function: int, address: int, words: list[int]) -> None:
        with self.lock:
            for i, word in enumerate(words):
                self.words[(unit, function, address + i)] = word

    def get(self, unit: int, name: str) -> float | None:
        rmap = self.units[unit]
        reg = rmap.registers[name]
        with self.lock:
            words = [self.words.get((unit, reg.function, reg.address + i), 0) for i in range(reg.count)]
        return decode(reg, words, rmap.word_order)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def main() -> None:
            devices = [self._device(unit, rmap) for unit, rmap in sorted(self.units.items())]
            self._server = ModbusTcpServer(devices, address=(self.host, self.port))
            await self._server.serve_forever(background=True)
            transport = getattr(self._server, "transport", None)
            sockets = getattr(transport, "sockets", None) or ()
            if sockets:
                self.port = sockets[0].getsockname()[1]
            self._ready.set()
            await self._server.serving

        with contextlib.suppress(asyncio.CancelledError):
            self._loop.run_until_complete(main())

    def start(self, timeout: float = 10.0) -> ModbusSim:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"Modbus simulator did not start on {self.host}:{self.port}")
        return self

    def stop(self) -> None:
        if self._server is not None and self._loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop).result(5)  # type: ignore[no-untyped-call]
        self._thread.join(5)
