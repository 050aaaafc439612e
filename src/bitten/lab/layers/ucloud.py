"""The lab's UCloud layer: a UCloud/Core TEST DOUBLE on the lab gateway, the IM TEST DOUBLE package the ucloud_im
role installs on lab-login, and a summary of what got registered on Core and in Slurm.

Everything it makes lives under .lab/ucloud/ (0600 for secrets): the lab CA and Core's certificate (ca.pem,
server.pem/.key), the admin token of the Core double, the IM database password, the IM double's .deb, Core's
state, and provider/ (refresh token and public key, written by the playbook's bitten_ucloud_provider task).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from rich.table import Table

from bitten.core.pki import server_tls
from bitten.lab.doubles.ucloud_package import build
from bitten.lab.service import SERVICES, SUMMARIES, LabService

if TYPE_CHECKING:
    from bitten.lab.lab import Lab

#: the names the lab inventory refers to
PACKAGE = "ucloud-im.deb"
ADMIN_TOKEN = "admin-token"  # noqa: S105 - a file name
DB_PASSWORD = "db-password"  # noqa: S105 - a file name


def state_dir(lab: Lab) -> Path:
    return lab.state / "ucloud"


def _secret_file(path: Path) -> None:
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(24) + "\n")


def core_port(lab: Lab) -> int:
    uc = lab.site.ucloud
    if uc is None:
        return 0
    parts = urlsplit(uc.core_url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def prepare(lab: Lab) -> Path:
    """Make what the Core double and the playbooks need (idempotent: existing files are kept)."""
    directory = state_dir(lab)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    server_tls(directory, [lab.gateway], ca_name="bitten lab CA (UCloud Core double)")
    _secret_file(directory / ADMIN_TOKEN)
    _secret_file(directory / DB_PASSWORD)
    package = build("deb", directory / "pkg")
    shutil.copyfile(package, directory / "pkg" / PACKAGE)
    return directory


def core_argv(lab: Lab) -> list[str]:
    directory = prepare(lab)
    tls = [] if lab.site.ucloud is None or not lab.site.ucloud.core_url.startswith("https") else [
        "--tls-cert", str(directory / "server.pem"), "--tls-key", str(directory / "server.key")]
    return [sys.executable, "-m", "bitten.lab.doubles.ucloud_core", "--listen", f"{lab.gateway}:{core_port(lab)}", *tls,
            "--admin-token-file", str(directory / ADMIN_TOKEN), "--state", str(directory / "core-state.json")]


def core_summary(lab: Lab) -> object:
    """The site's products as Core has them (through the provider's own token, as `bitten ucloud check`)."""
    # imported here, not at the top: only this path needs it, and start-up stays light
    from bitten.ucloud.check import check_site
    from bitten.ucloud.core import CoreClient, CoreError

    directory = state_dir(lab)
    token_file = directory / "provider" / "refresh-token"
    if lab.site.ucloud is None:
        return None
    if not token_file.exists():
        return "UCloud: no provider credentials yet (the ucloud playbook creates the provider on the Core double)"
    try:
        with CoreClient(lab.site.ucloud.core_url, ca_file=str(directory / "ca.pem"), retries=1) as client:
            result = check_site(lab.site, client, token_file.read_text().strip())
    except CoreError as exc:
        return f"UCloud: {exc}"
    table = Table(title=f"UCloud/Core test double: products of provider {result.provider}")
    for column in ("category", "product", "cpu", "memory GB", "gpu", "on Core"):
        table.add_column(column)
    for p in result.expected:
        key = (p["category"]["name"], p["name"])
        state = "missing" if key in result.missing else "different" if key in result.different else "registered"
        table.add_row(key[0], key[1], str(p.get("cpu", "")), str(p.get("memoryInGigs", "")), str(p.get("gpu", "")),
                      state)
    table.caption = (f"check: bitten ucloud check {lab.inventory} --refresh-token-file {token_file} "
                     f"--ca-file {directory / 'ca.pem'}")
    return table


def slurm_summary(lab: Lab) -> object:
    """The QoS of the UCloud machine types and the ucloud operator, as slurmdbd has them."""
    uc = lab.site.ucloud
    if uc is None or not lab.site.dbd_hosts:
        return None
    host = lab.container_name(lab.site.dbd_hosts[0])
    qos = sorted({m.qos for m in uc.machine_types.values()})
    lines = []
    for title, argv in (
        ("QoS of the UCloud machine types", ["sacctmgr", "--noheader", "--parsable2", "show", "qos", ",".join(qos),
                                             "format=name,priority,description"]),
        ("the IM's Slurm user", ["sacctmgr", "--noheader", "--parsable2", "show", "user", "ucloud", "withassoc",
                                 "format=user,adminlevel,account"]),
        ("Slurm accounts (the IM adds one per project and machine type)", [
            "sacctmgr", "--noheader", "--parsable2", "show", "account", "format=account,organization"]),
    ):
        proc = subprocess.run(["podman", "exec", host, *argv], capture_output=True, text=True, check=False)
        body = proc.stdout.strip() if proc.returncode == 0 else f"({proc.stderr.strip() or 'sacctmgr failed'})"
        lines.append(f"[bold]{title}[/]\n{body or '(none yet)'}")
    return f"Slurm accounting for UCloud (sacctmgr on {host})\n" + "\n".join(lines)


SERVICES.append(LabService(name="ucloud-core", argv=core_argv, summary=core_summary, port=core_port,
                           enabled=lambda lab: lab.site.ucloud is not None))
SUMMARIES.append(slurm_summary)
