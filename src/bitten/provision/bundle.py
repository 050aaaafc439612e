"""The per-node boot files, made on the controller and shipped to the provisioner as one bundle.

For every provisioned node: its iPXE script and its identity overlay (cpio: host name, network config, node.json,
root's authorized_keys, the SSH host key). The host keys are bitten's: generated once per node on the controller
(ed25519, private key 0600) in a directory the site keeps out of the repository, recorded in a known_hosts file so
that the playbooks connect with strict host-key checking, and read through the caller (so a vault-encrypted key is
decrypted without ever being written in clear). The bundle is one deterministic tar of ``nodes/<node>/...``: the
provisioner installs it with ``bitten-provision install-bundle`` (each file replaced only when it differs, nodes
no longer in the site removed), so the role's work does not grow with the number of nodes.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bitten.provision.files import BOOT_SCRIPT, OVERLAY_FILES
from bitten.provision.nodes import HTTP_ROOT, boot_nodes, provisioner
from bitten.provision.service.cpio import pack_entries
from bitten.site.model import Site

HOST_KEY = "ssh_host_ed25519_key"
#: directories an overlay brings, with the modes the node gets
OVERLAY_DIRS: dict[str, int] = {"etc": 0o755, "etc/bitten": 0o755, "etc/ssh": 0o755, "etc/systemd": 0o755,
                                "etc/systemd/network": 0o755, "root": 0o700, "root/.ssh": 0o700}
#: mode of each file in the bundle (the identity overlay holds a private key: readable by the web server only)
BOOT_SCRIPT_MODE, OVERLAY_MODE = 0o644, 0o640


@dataclass(frozen=True)
class HostKey:
    private: bytes
    public: str


def ensure_host_key(keys_dir: Path, node: str, check: bool = False) -> bool:
    """Generate ``node``'s SSH host key unless it exists; returns whether it was (or would be) generated."""
    directory = keys_dir / node
    public = directory / f"{HOST_KEY}.pub"
    if public.exists() and (directory / HOST_KEY).exists():
        return False
    if check:
        return True
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.chmod(0o700)
    (directory / HOST_KEY).unlink(missing_ok=True)
    public.unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{node}", "-f",
                    str(directory / HOST_KEY)], check=True)
    (directory / HOST_KEY).chmod(0o600)
    return True


def known_hosts_line(site: Site, node: str, public: str) -> str:
    boot = boot_nodes(site)[node]
    keytype, key = public.split()[:2]
    return f"{boot.ip},{node},{boot.fqdn} {keytype} {key}\n"


def update_known_hosts(path: Path, lines: Mapping[str, str], check: bool = False) -> bool:
    """Make ``path`` hold each node's line (replacing lines for the same address); returns whether it changed."""
    current = path.read_text().splitlines(keepends=True) if path.exists() else []
    wanted = dict(lines)
    addresses = {line.split(" ", 1)[0].split(",")[0]: node for node, line in wanted.items()}
    out: list[str] = []
    for line in current:
        first = line.split(" ", 1)[0].split(",")[0] if line.strip() else ""
        if first in addresses:
            continue  # replaced below by the node's current key
        out.append(line if line.endswith("\n") else line + "\n")
    out.extend(wanted[node] for node in sorted(wanted))
    changed = "".join(out) != "".join(current)
    if changed and not check:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(out))
    return changed


def node_files(site: Site, node: str, key: HostKey, render: Callable[[str, str], str]) -> dict[str, tuple[int, bytes]]:
    """nodes/<node>/boot.ipxe and nodes/<node>/identity.cpio, by path under the HTTP root; ``render(path, host)``
    is the generated file's content for a host (bitten.capabilities.render_file)."""
    entries: list[tuple[str, int, bytes | None]] = [(d, mode, None) for d, mode in OVERLAY_DIRS.items()]
    for path in OVERLAY_FILES:
        mode = 0o600 if path.startswith("/root/") else 0o644
        entries.append((path.lstrip("/"), mode, render(path, node).encode()))
    private = key.private if key.private.endswith(b"\n") else key.private + b"\n"
    entries.append((f"etc/ssh/{HOST_KEY}", 0o600, private))
    entries.append((f"etc/ssh/{HOST_KEY}.pub", 0o644, (key.public.strip() + "\n").encode()))
    script = BOOT_SCRIPT.replace("{item}", node)
    base = script[len(HTTP_ROOT) + 1:].rsplit("/", 1)[0]
    return {f"{base}/boot.ipxe": (BOOT_SCRIPT_MODE, render(script, str(provisioner(site))).encode()),
            f"{base}/identity.cpio": (OVERLAY_MODE, pack_entries(entries))}


def bundle(files: Mapping[str, tuple[int, bytes]]) -> bytes:
    """A deterministic tar (sorted, root-owned, zero times) of ``files``."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            mode, data = files[name]
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime, info.uid, info.gid = len(data), mode, 0, 0, 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()
