"""A deterministic cpio writer (newc, the Linux initramfs format) for the nodes' identity overlays.

The kernel unpacks every initrd it is given onto the root file system in order, so an overlay loaded after the
image replaces the image's files (host name, network config, host keys) and adds new ones. The archive mirrors a
staging tree: its modes, root-owned, every timestamp zero and entries sorted, so the same tree always gives the
same bytes and a re-run of the role changes nothing.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAGIC = b"070701"
TRAILER = "TRAILER!!!"


def _pad(length: int) -> bytes:
    return b"\0" * ((4 - length % 4) % 4)


def _entry(name: str, mode: int, data: bytes, ino: int) -> bytes:
    encoded = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, 2 if stat.S_ISDIR(mode) else 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
    header = MAGIC + b"".join(b"%08X" % value for value in fields)
    return header + encoded + _pad(len(header) + len(encoded)) + data + _pad(len(data))


def pack_entries(entries: list[tuple[str, int, bytes | None]]) -> bytes:
    """The newc archive of (name, permission bits, content) entries, sorted by name; content None is a directory."""
    out = []
    for ino, (name, mode, data) in enumerate(sorted(entries, key=lambda e: e[0]), start=1):
        kind = stat.S_IFDIR if data is None else stat.S_IFREG
        out.append(_entry(name, kind | (mode & 0o7777), data or b"", ino))
    out.append(_entry(TRAILER, 0, b"", 0))
    return b"".join(out)


def pack(tree: Path) -> bytes:
    """The newc archive of ``tree``: directories and regular files (paths relative to it, without ``./``)."""
    entries: list[tuple[str, int, bytes | None]] = []
    for path in tree.rglob("*"):
        info = path.lstat()
        name = path.relative_to(tree).as_posix()
        if stat.S_ISDIR(info.st_mode):
            entries.append((name, stat.S_IMODE(info.st_mode), None))
        elif stat.S_ISREG(info.st_mode):
            entries.append((name, stat.S_IMODE(info.st_mode), path.read_bytes()))
        else:
            raise ValueError(f"{path}: only directories and regular files go into an overlay")
    return pack_entries(entries)


def unpack(data: bytes) -> dict[str, tuple[int, bytes]]:
    """name -> (mode, content) of a newc archive (for tests and for checking what a node got)."""
    out: dict[str, tuple[int, bytes]] = {}
    offset = 0
    while offset < len(data):
        if data[offset:offset + 6] != MAGIC:
            raise ValueError(f"not a newc archive at byte {offset}")
        fields = [int(data[offset + 6 + 8 * i: offset + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        start = offset + 110
        name = data[start:start + namesize - 1].decode()
        start += namesize + len(_pad(110 + namesize))
        if name == TRAILER:
            break
        out[name] = (mode, data[start:start + size])
        offset = start + size + len(_pad(size))
    return out


def write_if_changed(data: bytes, dest: Path, mode: int = 0o640, group: int | None = None,
                     check: bool = False) -> bool:
    """Replace ``dest`` with ``data`` (atomically) when it differs; returns whether it did (or would)."""
    try:
        same = dest.read_bytes() == data and stat.S_IMODE(dest.stat().st_mode) == mode and (
            group is None or dest.stat().st_gid == group)
    except FileNotFoundError:
        same = False
    if same or check:
        return not same
    tmp = dest.with_name(f".{dest.name}.tmp")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        out.write(data)
        if group is not None:
            os.fchown(out.fileno(), 0, group)
        os.fchmod(out.fileno(), mode)
    os.replace(tmp, dest)
    return True
