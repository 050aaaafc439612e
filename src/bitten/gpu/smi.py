"""What ``nvidia-smi -L`` and ``nvidia-smi -q -x`` report, as typed values.

The XML follows the nvsmi_device DTD that nvidia-smi prints with ``--dtd`` (v12 for the 550-580 branches).
Elements come and go between driver branches, so every field is optional except the GPU's bus id: a value the
driver does not report is None, never a guess. Values such as "N/A", "[N/A]" or "Not Supported" also read as None.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

#: exit codes documented in nvidia-smi(1), RETURN VALUE
EXIT_CODES: dict[int, str] = {
    2: "a supplied argument or flag is invalid",
    3: "the requested operation is not available on the target device",
    4: "no permission to access the device",
    6: "a query to find an object was unsuccessful",
    8: "a GPU's external power cables are not properly attached",
    9: "the NVIDIA driver is not loaded",
    10: "the NVIDIA kernel module detected an interrupt issue with a GPU",
    12: "the NVML shared library could not be found or loaded",
    13: "the local NVML does not implement this function",
    14: "a GPU's infoROM is corrupted",
    15: "a GPU has fallen off the bus or has otherwise become inaccessible",
    255: "other error or internal driver error",
}

_LIST_LINE = re.compile(r"^GPU (?P<index>\d+): (?P<name>.+?) \(UUID: (?P<uuid>[^)]+)\)\s*$")
_MISSING = {"", "n/a", "[n/a]", "not supported", "[not supported]", "unknown error", "[unknown error]"}


class SmiParseError(ValueError):
    """nvidia-smi printed something that is not the documented format."""


@dataclass(frozen=True)
class ListedGpu:
    """One line of ``nvidia-smi -L``: ``GPU 0: NVIDIA B200 (UUID: GPU-...)``; MIG devices are skipped."""

    index: int
    name: str
    uuid: str


def parse_list(text: str) -> list[ListedGpu]:
    """Parse ``nvidia-smi -L``. Indented MIG lines are ignored; any other unexpected line is an error."""
    gpus: list[ListedGpu] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not line or raw[:1].isspace():
            continue
        match = _LIST_LINE.match(line)
        if not match:
            raise SmiParseError(f"nvidia-smi -L line {number} is not 'GPU <n>: <name> (UUID: <uuid>)': {line!r}")
        gpus.append(ListedGpu(int(match["index"]), match["name"], match["uuid"]))
    return gpus


@dataclass(frozen=True)
class GpuState:
    """One ``<gpu>`` element of ``nvidia-smi -q -x``: identity and the health-relevant state."""

    #: PCI bus id as nvidia-smi writes it, e.g. 00000000:1B:00.0
    bus_id: str
    name: str | None = None
    uuid: str | None = None
    serial: str | None = None
    architecture: str | None = None
    minor_number: int | None = None
    persistence_mode: bool | None = None
    ecc_enabled: bool | None = None
    ecc_pending: bool | None = None
    #: uncorrectable ECC errors since the driver loaded (DRAM + SRAM, or the legacy double-bit total)
    volatile_uncorrectable: int | None = None
    aggregate_uncorrectable: int | None = None
    retirement_pending: bool | None = None
    remap_pending: bool | None = None
    remap_failure: bool | None = None
    reset_required: bool | None = None
    drain_and_reset_recommended: bool | None = None
    #: NVSwitch fabric registration: state (Not Started, In Progress, Completed) and status (Success or an error)
    fabric_state: str | None = None
    fabric_status: str | None = None
    #: newer drivers: the recovery the driver asks for (None, Reset, Reboot, Drain P2P, Drain and Reset)
    recovery_action: str | None = None

    @property
    def pci(self) -> str:
        return normalize_pci(self.bus_id)


@dataclass(frozen=True)
class SmiReport:
    driver_version: str | None
    cuda_version: str | None
    attached_gpus: int | None
    gpus: tuple[GpuState, ...]


def normalize_pci(address: str) -> str:
    """A PCI address as the kernel log writes it: ``00000000:1B:00.0`` and ``PCI:0000:1b:00`` -> ``0000:1b:00``."""
    value = address.strip().lower()
    if value.startswith("pci:"):
        value = value[4:]
    value = value.split(".", 1)[0]
    parts = value.split(":")
    if len(parts) == 2:
        parts.insert(0, "0000")
    if len(parts) != 3:
        raise SmiParseError(f"{address!r} is not a PCI address")
    domain, bus, device = parts
    return f"{domain[-4:].rjust(4, '0')}:{bus.rjust(2, '0')}:{device.rjust(2, '0')}"


def _text(node: ET.Element | None, path: str) -> str | None:
    if node is None:
        return None
    found = node.find(path)
    if found is None or found.text is None:
        return None
    value = found.text.strip()
    return None if value.lower() in _MISSING else value


def _int(node: ET.Element | None, path: str) -> int | None:
    value = _text(node, path)
    if value is None:
        return None
    try:
        return int(value.split()[0])
    except ValueError:
        return None


def _flag(node: ET.Element | None, path: str, yes: tuple[str, ...] = ("yes", "enabled")) -> bool | None:
    value = _text(node, path)
    return None if value is None else value.lower() in yes


def _sum(values: list[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _uncorrectable(ecc: ET.Element | None) -> int | None:
    """Uncorrectable errors in an ecc_errors/volatile or /aggregate block, whatever the DTD variant."""
    if ecc is None:
        return None
    legacy = _int(ecc, "double_bit/total")
    if legacy is not None:
        return legacy
    return _sum([_int(ecc, tag) for tag in ("dram_uncorrectable", "sram_uncorrectable", "sram_uncorrectable_parity",
                                            "sram_uncorrectable_secded")])


def _gpu(node: ET.Element) -> GpuState:
    bus_id = node.get("id") or _text(node, "pci/pci_bus_id")
    if not bus_id:
        raise SmiParseError("a <gpu> element has neither an id attribute nor pci/pci_bus_id")
    ecc = node.find("ecc_errors")
    remap = node.find("remapped_rows")
    fabric = node.find("fabric")
    return GpuState(
        bus_id=bus_id,
        name=_text(node, "product_name"),
        uuid=_text(node, "uuid"),
        serial=_text(node, "serial"),
        architecture=_text(node, "product_architecture"),
        minor_number=_int(node, "minor_number"),
        persistence_mode=_flag(node, "persistence_mode"),
        ecc_enabled=_flag(node, "ecc_mode/current_ecc"),
        ecc_pending=_flag(node, "ecc_mode/pending_ecc"),
        volatile_uncorrectable=_uncorrectable(ecc.find("volatile") if ecc is not None else None),
        aggregate_uncorrectable=_uncorrectable(ecc.find("aggregate") if ecc is not None else None),
        retirement_pending=_flag(node, "retired_pages/pending_retirement"),
        remap_pending=_flag(remap, "remapped_row_pending"),
        remap_failure=_flag(remap, "remapped_row_failure"),
        reset_required=_flag(node, "gpu_reset_status/reset_required"),
        drain_and_reset_recommended=_flag(node, "gpu_reset_status/drain_and_reset_recommended"),
        fabric_state=_text(fabric, "state"),
        fabric_status=_text(fabric, "status"),
        recovery_action=_text(node, "gpu_recovery_action"),
    )


def parse_query(xml: str | bytes) -> SmiReport:
    """Parse ``nvidia-smi -q -x``."""
    try:
        root = ET.fromstring(xml)  # noqa: S314 - local nvidia-smi output; expat resolves no external entities
    except ET.ParseError as exc:
        raise SmiParseError(f"nvidia-smi -q -x printed no valid XML: {exc}") from None
    if root.tag != "nvidia_smi_log":
        raise SmiParseError(f"nvidia-smi -q -x: root element is <{root.tag}>, expected <nvidia_smi_log>")
    return SmiReport(
        driver_version=_text(root, "driver_version"),
        cuda_version=_text(root, "cuda_version"),
        attached_gpus=_int(root, "attached_gpus"),
        gpus=tuple(_gpu(node) for node in root.findall("gpu")),
    )


def matches_type(name: str, slurm_type: str) -> bool:
    """Whether a product name is the GRES type: "NVIDIA B200" is b200, "NVIDIA H100 80GB HBM3" is h100.

    The same rule as Slurm's NVML autodetection: lower case, non-alphanumerics as underscores, substring match.
    """
    normal = re.sub(r"[^a-z0-9]+", "_", name.lower())
    return slurm_type.lower() in normal
