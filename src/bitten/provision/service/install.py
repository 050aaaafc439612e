"""Install the controller's bundle of per-node boot files under the provisioner's HTTP root.

The bundle (a tar of ``nodes/<node>/boot.ipxe`` and ``nodes/<node>/identity.cpio``) is made by the provisioner
role on the controller (bitten.provision.bundle). Each file is replaced atomically and only when it differs; a
file with group-only read (the identity overlays, which hold the node's SSH host key) goes to the web server's
group; the directory of a node the bundle no longer has is removed. Returns what changed, so the role reports
changes truthfully and check mode changes nothing.
"""

from __future__ import annotations

import grp
import io
import shutil
import tarfile
from pathlib import Path, PurePosixPath

from .cpio import write_if_changed


def install_bundle(data: bytes, root: Path, group: str = "www-data", check: bool = False) -> list[str]:
    gid = grp.getgrnam(group).gr_gid
    changed: list[str] = []
    nodes: set[str] = set()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar.getmembers():
            name = PurePosixPath(member.name)
            if not member.isfile() or name.is_absolute() or ".." in name.parts or name.parts[0] != "nodes":
                raise ValueError(f"unexpected entry {member.name!r} in the bundle")
            nodes.add(name.parts[1])
            extracted = tar.extractfile(member)
            assert extracted is not None
            content = extracted.read()
            dest = root / name
            if not check:
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.parent.chmod(0o755)
            mode = member.mode & 0o777
            if write_if_changed(content, dest, mode=mode, group=gid if mode & 0o070 and not mode & 0o007 else 0,
                                check=check):
                changed.append(str(name))
    stale = sorted(p for p in (root / "nodes").glob("*") if p.is_dir() and p.name not in nodes) \
        if (root / "nodes").is_dir() else []
    for directory in stale:
        changed.append(f"nodes/{directory.name}/ (removed: not in the site)")
        if not check:
            shutil.rmtree(directory)
    return changed
