"""Ask the provisioning network's DHCP server for a MAC's lease, as a PXE client would (a diagnostic).

``bitten-provision dhcp-probe --mac 52:54:00:77:00:41 [--ipxe]`` broadcasts a DHCPDISCOVER with that client
hardware address (and, with --ipxe, iPXE's user class), then a DHCPREQUEST for what was offered, and prints what
came back: the address, the host name, the router and the boot file, or that nothing answered (a MAC without a
reservation gets no answer). It needs UDP port 68 on the host it runs on, so run it where no DHCP client runs.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import time
from dataclasses import asdict, dataclass, field

COOKIE = b"\x63\x82\x53\x63"
DISCOVER, OFFER, REQUEST, ACK, NAK = 1, 2, 3, 5, 6
NAMES = {OFFER: "OFFER", ACK: "ACK", NAK: "NAK"}


@dataclass
class Answer:
    kind: str
    address: str
    server: str | None = None
    hostname: str | None = None
    router: str | None = None
    netmask: str | None = None
    boot_file: str | None = None
    lease_s: int | None = None
    options: dict[int, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _packet(kind: int, mac: bytes, xid: int, ipxe: bool, requested: str | None = None,
            server: str | None = None) -> bytes:
    header = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000, b"\0" * 4, b"\0" * 4,
                         b"\0" * 4, b"\0" * 4, mac.ljust(16, b"\0"), b"\0" * 64, b"\0" * 128)
    options = bytes([53, 1, kind]) + bytes([61, 7, 1]) + mac
    if ipxe:
        options += bytes([77, 4]) + b"iPXE" + bytes([175, 0])
    if requested:
        options += bytes([50, 4]) + ipaddress.IPv4Address(requested).packed
    if server:
        options += bytes([54, 4]) + ipaddress.IPv4Address(server).packed
    options += bytes([55, 6, 1, 3, 6, 12, 15, 67]) + bytes([255])
    return header + COOKIE + options


def _parse(data: bytes, xid: int, mac: bytes) -> tuple[int, Answer] | None:
    if len(data) < 240 or data[236:240] != COOKIE or struct.unpack("!I", data[4:8])[0] != xid:
        return None
    if data[28:34] != mac:
        return None
    options: dict[int, bytes] = {}
    i = 240
    while i < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        code, length = data[i], data[i + 1]
        options[code] = data[i + 2:i + 2 + length]
        i += 2 + length
    kind = options.get(53, b"\0")[0]
    file_field = data[108:236].split(b"\0", 1)[0].decode(errors="replace") or None

    def ip(code: int) -> str | None:
        return str(ipaddress.IPv4Address(options[code][:4])) if code in options else None

    answer = Answer(
        kind=NAMES.get(kind, str(kind)), address=str(ipaddress.IPv4Address(data[16:20])), server=ip(54),
        hostname=options[12].decode(errors="replace") if 12 in options else None, router=ip(3), netmask=ip(1),
        boot_file=options[67].decode(errors="replace").rstrip("\0") if 67 in options else file_field,
        lease_s=struct.unpack("!I", options[51])[0] if 51 in options else None,
        options={code: value.hex() for code, value in sorted(options.items())})
    return kind, answer


def probe(mac: str, ipxe: bool = False, timeout: float = 4.0, request: bool = True) -> list[Answer]:
    """DISCOVER (then REQUEST the offer); the answers received, in order (empty: nobody answered)."""
    hw = bytes.fromhex(mac.replace(":", "").replace("-", ""))
    if len(hw) != 6:
        raise ValueError(f"{mac!r} is not a MAC address")
    xid = struct.unpack("!I", os.urandom(4))[0]
    answers: list[Answer] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.bind(("", 68))
        sock.sendto(_packet(DISCOVER, hw, xid, ipxe), ("255.255.255.255", 67))
        wanted = OFFER
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            try:
                data, _ = sock.recvfrom(4096)
            except TimeoutError:
                break
            parsed = _parse(data, xid, hw)
            if parsed is None:
                continue
            kind, answer = parsed
            answers.append(answer)
            if kind == OFFER and wanted == OFFER and request:
                sock.sendto(_packet(REQUEST, hw, xid, ipxe, answer.address, answer.server),
                            ("255.255.255.255", 67))
                wanted = ACK
                deadline = time.monotonic() + timeout
            elif kind in (ACK, NAK) or not request:
                break
    return answers
