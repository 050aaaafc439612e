"""XID errors: the NVIDIA driver's error reports in the kernel log.

nvidia-smi does not list past XIDs (nvidia-smi(1): XID events are only printed live during ``-l`` loops; the
``stats`` command that kept them was removed), so the kernel log is where they are read. The driver writes

    NVRM: Xid (PCI:0000:1b:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.

(older drivers omit ``PCI:``), and ``journalctl -k`` prefixes a timestamp and ``kernel:``. Only kernel-transport
messages count: ``journalctl -k`` never shows what a user logged with logger(1), so nobody can drain a node by
writing a fake XID.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_XID = re.compile(r"NVRM: Xid \((?:PCI:)?(?P<pci>[0-9A-Fa-f]{4}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2})[^)]*\): "
                  r"(?P<code>\d+), ?(?P<detail>.*)$")
_UNIX_TS = re.compile(r"^\s*(?P<ts>\d{9,}\.\d+)\s")
_ISO_TS = re.compile(r"^\s*(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:[+-]\d\d:?\d\d|Z)?)\s")
_DMESG_TS = re.compile(r"^\s*\[\s*(?P<ts>\d+\.\d+)\]\s")
_RECOVERY_NONE = re.compile(r"to 0x0 \(None\)", re.IGNORECASE)

#: XIDs that mean the GPU, its memory or its links need a reset, a reboot or service, with what they mean
#: (from NVIDIA's XID catalog). Application faults (13, 31, 43, 45, ...) are left out: they end a job, not a node.
CRITICAL_XIDS: dict[int, str] = {
    48: "double-bit ECC error",
    61: "internal micro-controller breakpoint/warning",
    62: "internal micro-controller halt",
    64: "ECC page retirement or row remapping failed",
    74: "NVLink error",
    79: "GPU has fallen off the bus",
    92: "high single-bit ECC error rate",
    94: "contained ECC error",
    95: "uncontained ECC error",
    110: "security fault",
    119: "GSP RPC timeout",
    120: "GSP error",
    140: "unrecovered ECC error",
    144: "NVLink SAW error",
    145: "NVLink RLW error",
    146: "NVLink TLW error",
    147: "NVLink TREX error",
    148: "NVLink NVLPW_CTRL error",
    149: "NVLink NETIR error",
    150: "NVLink MSE error",
    154: "GPU recovery action changed",
}


@dataclass(frozen=True)
class XidEvent:
    #: PCI address as the kernel log writes it, e.g. 0000:1b:00
    pci: str
    code: int
    detail: str
    #: the timestamp as printed (epoch seconds, ISO 8601 or seconds since boot), or None
    timestamp: str | None
    line: str

    def is_critical(self, codes: set[int] | frozenset[int] | None = None) -> bool:
        """Whether this XID should take the node out of service. XID 154 counts unless it says "to None"."""
        critical = set(CRITICAL_XIDS) if codes is None else set(codes)
        if self.code not in critical:
            return False
        return not (self.code == 154 and _RECOVERY_NONE.search(self.detail))

    @property
    def meaning(self) -> str:
        return CRITICAL_XIDS.get(self.code, "see NVIDIA's XID catalog")


def parse_kernel_log(text: str) -> list[XidEvent]:
    """Every XID in kernel log text (journalctl -k in any short format, or dmesg), in order."""
    events: list[XidEvent] = []
    for raw in text.splitlines():
        match = _XID.search(raw)
        if not match:
            continue
        stamp = next((m["ts"] for pattern in (_UNIX_TS, _ISO_TS, _DMESG_TS) if (m := pattern.match(raw))), None)
        events.append(XidEvent(pci=match["pci"].lower(), code=int(match["code"]), detail=match["detail"].strip(),
                               timestamp=stamp, line=raw.strip()))
    return events
