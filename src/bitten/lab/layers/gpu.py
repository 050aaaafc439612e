"""Lab layer for the GPU stack: a summary section saying which GPU health checks ran on each GPU node.

The lab's GPU nodes are containers (no driver, /dev/nvidia* mapped to /dev/null), so the gpu role runs there in
its container-safe mode; the section shows what the real bitten-gpu-health found: the checks that ran, and the
ones skipped because a container has no driver.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rich.table import Table

from bitten.lab import podman as pm
from bitten.lab.service import SUMMARIES
from bitten.site.model import GROUP_GPU

if TYPE_CHECKING:
    from bitten.lab.lab import Lab

COMMAND = ["/usr/local/sbin/bitten-gpu-health", "--mode", "report", "--json"]


def rows(host: str, report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Table rows for one node's ``bitten-gpu-health --json`` report: host, check, status, what it found."""
    out = []
    for check in report.get("checks", []):
        found = "; ".join(check.get("findings") or []) or check.get("detail", "")
        out.append((host, str(check.get("name")), str(check.get("status")), found))
    verdict = "healthy" if report.get("healthy") else f"unhealthy: {report.get('reason')}"
    out.append((host, "verdict", "ok" if report.get("healthy") else "fail", verdict))
    return out


def gpu_checks(lab: Lab) -> Table | None:
    hosts = lab.site.hosts_in(GROUP_GPU)
    if not hosts:
        return None
    table = Table(title="GPU health checks (bitten-gpu-health on each GPU node; containers have no driver)")
    for column in ("host", "check", "status", "found"):
        table.add_column(column)
    for host in hosts:
        proc = pm.exec_in(lab.container_name(host), COMMAND, check=False)
        try:
            report = json.loads(proc.stdout)
        except ValueError:
            table.add_row(host, "-", "not run", (proc.stderr or proc.stdout).strip()[:200] or f"exit {proc.returncode}")
            continue
        for row in rows(host, report):
            table.add_row(*row)
    return table


SUMMARIES.append(gpu_checks)
