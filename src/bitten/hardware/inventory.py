"""Hardware facts a BMC reports: model, serial, MACs, processors, memory, GPUs where it exposes them.

GPUs are found where BMCs put them: Processors with ProcessorType GPU (DMTF), Chassis PCIeDevices whose functions
are 3D controllers or processing accelerators, and on HPE iLO the Oem.Hpe PCIDevices collection (PCI class 0x03
with a subclass other than VGA, or 0x12). The embedded VGA controller (class 0x0300) is not a GPU. Every field is
optional: emulators and older BMCs omit many.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bitten.core.redfish.document import link, members
from bitten.hardware.node import BmcNode

#: PCI base classes of compute GPUs: display controllers (except VGA, subclass 0) and processing accelerators
DISPLAY, ACCELERATOR = 0x03, 0x12


@dataclass(frozen=True)
class Processor:
    id: str
    model: str | None
    manufacturer: str | None
    cores: int | None
    threads: int | None


@dataclass(frozen=True)
class BmcGpu:
    id: str
    model: str | None
    manufacturer: str | None
    #: where the BMC reported it
    source: str


@dataclass(frozen=True)
class Inventory:
    host: str
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    sku: str | None = None
    uuid: str | None = None
    bios_version: str | None = None
    power: str | None = None
    macs: tuple[str, ...] = ()
    processors: tuple[Processor, ...] = ()
    memory_gib: float | None = None
    dimms: int | None = None
    gpus: tuple[BmcGpu, ...] = ()
    bmc_firmware: str | None = None
    #: a few HPE facts (PostState, iLO generation) when the BMC is an iLO
    oem: dict[str, Any] = field(default_factory=dict)

    @property
    def cores(self) -> int:
        return sum(p.cores or 0 for p in self.processors)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cores"] = self.cores
        return data


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def read_inventory(node: BmcNode, gpus: bool = True) -> Inventory:
    """Read the facts; ``gpus=False`` skips the PCIe walk (the most requests)."""
    conn = node.conn
    raw: dict[str, Any] = node.system(refresh=True)
    processors, found_gpus = _processors(node, raw)
    memory = raw.get("MemorySummary") or {}
    memory_gib = memory.get("TotalSystemMemoryGiB")
    dimms = None
    memory_path = link(raw, "Memory")
    if memory_path:
        # optional: the sushy-tools emulator links a Memory collection it does not serve
        dimm_paths = members(conn.get_json(memory_path, optional=True))
        present = 0
        mib = 0
        for path in dimm_paths:
            dimm = conn.get_json(path, optional=True)
            if (dimm.get("Status") or {}).get("State") == "Absent":
                continue
            present += 1
            mib += int(dimm.get("CapacityMiB") or 0)
        dimms = present if dimm_paths else None
        if memory_gib is None and mib:
            memory_gib = mib / 1024
    if gpus:
        found_gpus += _pcie_gpus(node, raw)
    hpe = ((raw.get("Oem") or {}).get("Hpe") or {})
    oem = {k: hpe[k] for k in ("PostState", "PowerRegulatorMode", "PowerAutoOn") if k in hpe}
    firmware = None
    manager = link(raw, "Links", "ManagedBy")
    if manager:
        body = conn.get_json(manager, optional=True)
        firmware = _text(body.get("FirmwareVersion"))
        generation = (((body.get("Oem") or {}).get("Hpe") or {}).get("Firmware") or {}).get("Current", {})
        if generation.get("VersionString"):
            oem["iLO"] = generation["VersionString"]
    chassis_serial = None
    if not _text(raw.get("SerialNumber")):
        chassis = link(raw, "Links", "Chassis")
        if chassis:
            chassis_serial = _text(conn.get_json(chassis, optional=True).get("SerialNumber"))
    unique: dict[tuple[str, str], BmcGpu] = {}
    for gpu in found_gpus:
        unique.setdefault((gpu.model or "", gpu.id), gpu)
    return Inventory(
        host=node.endpoint.host, manufacturer=_text(raw.get("Manufacturer")), model=_text(raw.get("Model")),
        serial=_text(raw.get("SerialNumber")) or chassis_serial, sku=_text(raw.get("SKU")),
        uuid=_text(raw.get("UUID")), bios_version=_text(raw.get("BiosVersion")), power=raw.get("PowerState"),
        macs=node.read_macs(raw), processors=tuple(processors), memory_gib=memory_gib, dimms=dimms,
        gpus=tuple(unique.values()), bmc_firmware=firmware, oem=oem)


def _processors(node: BmcNode, raw: dict[str, Any]) -> tuple[list[Processor], list[BmcGpu]]:
    path = link(raw, "Processors")
    cpus: list[Processor] = []
    gpus: list[BmcGpu] = []
    if path is None:
        return cpus, gpus
    for member in members(node.conn.get_json(path, optional=True)):
        body = node.conn.get_json(member, optional=True)
        if (body.get("Status") or {}).get("State") == "Absent":
            continue
        kind = str(body.get("ProcessorType") or "CPU")
        ident = str(body.get("Id") or member.rstrip("/").rsplit("/", 1)[-1])
        if kind == "GPU":
            gpus.append(BmcGpu(ident, _text(body.get("Model")), _text(body.get("Manufacturer")), "Processors"))
        elif kind == "CPU":
            cpus.append(Processor(ident, _text(body.get("Model")), _text(body.get("Manufacturer")),
                                  _int(body.get("TotalCores")), _int(body.get("TotalThreads"))))
    return cpus, gpus


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _pcie_gpus(node: BmcNode, raw: dict[str, Any]) -> list[BmcGpu]:
    conn = node.conn
    found: list[BmcGpu] = []
    hpe_devices = link(raw, "Oem", "Hpe", "Links", "PCIDevices")
    if hpe_devices:
        for member in members(conn.get_json(hpe_devices, optional=True)):
            dev = conn.get_json(member, optional=True)
            if _is_gpu_class(_int(dev.get("ClassCode")), _int(dev.get("SubclassCode"))):
                found.append(BmcGpu(str(dev.get("Id") or member), _text(dev.get("Name")), None, "Oem.Hpe.PCIDevices"))
    chassis = link(raw, "Links", "Chassis")
    if chassis:
        devices = link(conn.get_json(chassis, optional=True), "PCIeDevices")
        if devices:
            for member in members(conn.get_json(devices, optional=True)):
                dev = conn.get_json(member, optional=True)
                if _pcie_is_gpu(node, dev):
                    found.append(BmcGpu(str(dev.get("Id") or member), _text(dev.get("Model") or dev.get("Name")),
                                     _text(dev.get("Manufacturer")), "PCIeDevices"))
    return found


def _pcie_is_gpu(node: BmcNode, dev: dict[str, Any]) -> bool:
    if str(dev.get("DeviceType", "")).upper() == "GPU":
        return True
    functions = link(dev, "PCIeFunctions") or link(dev, "Links", "PCIeFunctions")
    if not functions:
        return False
    for member in members(node.conn.get_json(functions, optional=True)):
        function = node.conn.get_json(member, optional=True)
        code = str(function.get("ClassCode") or "")
        if function.get("DeviceClass") == "ProcessingAccelerators":
            return True
        if function.get("DeviceClass") == "DisplayController" and not code.lower().startswith("0x0300"):
            return True
    return False


def _is_gpu_class(base: int | None, subclass: int | None) -> bool:
    return base == ACCELERATOR or (base == DISPLAY and subclass not in (None, 0))
