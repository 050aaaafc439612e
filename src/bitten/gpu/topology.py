"""The GPU interconnect matrix of ``nvidia-smi topo -m``.

The documented format: a tab-separated header of device columns (GPU0.., NIC0..) followed by CPU Affinity, NUMA
Affinity and GPU NUMA ID; one row per device; cells are X (self), NV<n> (n bonded NVLinks), or a PCIe path
(PIX, PXB, PHB, NODE, SYS); then a Legend and, when NICs exist, a NIC Legend mapping NIC<n> to its name.
Real output has quirks this parser accepts: an empty extra field before GPU NUMA ID, empty affinity cells and
ANSI underlining on the header when printed to a terminal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import combinations

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_DEVICE = re.compile(r"^(GPU|NIC)\d+$")
_NVLINK = re.compile(r"^NV(\d+)$")
_NIC_LEGEND = re.compile(r"^\s*(NIC\d+):\s*(\S+)\s*$")
PCIE_PATHS = {"PIX", "PXB", "PHB", "NODE", "SYS"}


class TopologyParseError(ValueError):
    """The text is not an ``nvidia-smi topo -m`` matrix."""


@dataclass(frozen=True)
class Topology:
    gpus: tuple[str, ...]
    nics: tuple[str, ...]
    #: (row, column) -> cell, e.g. ("GPU0", "GPU1") -> "NV18"
    cells: dict[tuple[str, str], str]
    cpu_affinity: dict[str, str] = field(default_factory=dict)
    numa_affinity: dict[str, str] = field(default_factory=dict)
    nic_names: dict[str, str] = field(default_factory=dict)

    def link(self, a: str, b: str) -> str:
        return self.cells.get((a, b), "")

    def nvlinks(self, a: str, b: str) -> int:
        """Bonded NVLinks between two devices (0 when they talk over PCIe only)."""
        match = _NVLINK.match(self.link(a, b))
        return int(match.group(1)) if match else 0

    def weak_pairs(self, min_links: int = 1) -> list[tuple[str, str, str]]:
        """GPU pairs joined by fewer than ``min_links`` NVLinks, with the cell that says how they connect."""
        return [(a, b, self.link(a, b) or "missing") for a, b in combinations(self.gpus, 2)
                if self.nvlinks(a, b) < min_links]


def parse_topology(text: str) -> Topology:
    lines = [_ANSI.sub("", line) for line in text.splitlines()]
    header_at = next((i for i, line in enumerate(lines) if re.search(r"\tGPU0(\t|$)", line)), None)
    if header_at is None:
        raise TopologyParseError("no header row with a GPU0 column: is this `nvidia-smi topo -m` output?")
    header = [cell.strip() for cell in lines[header_at].split("\t")]
    devices = [cell for cell in header[1:] if _DEVICE.match(cell)]
    if header[1:1 + len(devices)] != devices:
        raise TopologyParseError(f"device columns are not contiguous in the header: {header!r}")
    cells: dict[tuple[str, str], str] = {}
    cpu: dict[str, str] = {}
    numa: dict[str, str] = {}
    rows: list[str] = []
    for line in lines[header_at + 1:]:
        if not line.strip():
            break
        fields = line.split("\t")
        row = fields[0].strip()
        if not _DEVICE.match(row):
            raise TopologyParseError(f"unexpected row {row!r} in the topology matrix")
        values = [cell.strip() for cell in fields[1:]]
        if len(values) < len(devices):
            raise TopologyParseError(f"row {row} has {len(values)} cells for {len(devices)} device columns")
        for column, value in zip(devices, values, strict=False):
            cells[(row, column)] = value
        rest = values[len(devices):]
        if row.startswith("GPU") and rest:
            cpu[row] = rest[0]
            if len(rest) > 1:
                numa[row] = rest[1]
        rows.append(row)
    gpus = tuple(d for d in devices if d.startswith("GPU"))
    missing = [g for g in gpus if g not in rows]
    if missing:
        raise TopologyParseError(f"no row for {', '.join(missing)}")
    nic_names = {m.group(1): m.group(2) for line in lines if (m := _NIC_LEGEND.match(line))}
    return Topology(gpus=gpus, nics=tuple(d for d in devices if d.startswith("NIC")), cells=cells,
                    cpu_affinity=cpu, numa_affinity=numa, nic_names=nic_names)
