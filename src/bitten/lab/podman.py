"""A thin, typed wrapper over the podman CLI (root podman with the project's containers.conf)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: label on everything the lab creates; its value is the site name
LAB_LABEL = "io.bitten.lab"


class PodmanError(RuntimeError):
    pass


def containers_conf() -> Path:
    """The project's containers.conf (runc, lowered ulimits), exported as CONTAINERS_CONF if unset."""
    here = Path(__file__).resolve()
    conf = Path(os.environ.get("CONTAINERS_CONF") or here.parents[3] / "lab" / "containers.conf")
    os.environ.setdefault("CONTAINERS_CONF", str(conf))
    return conf


def podman(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    containers_conf()
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, input=input, check=False)
    if check and proc.returncode != 0:
        raise PodmanError(f"podman {' '.join(args[:3])} ... failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def image_exists(ref: str) -> bool:
    return podman("image", "exists", ref, check=False).returncode == 0


def network_exists(name: str) -> bool:
    return podman("network", "exists", name, check=False).returncode == 0


def network_interface(name: str) -> str | None:
    """The bridge interface of a podman network (it exists while a container is attached)."""
    proc = podman("network", "inspect", name, check=False)
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout)
    found = data[0].get("network_interface") if data else None
    return str(found) if found else None


def inspect_container(name: str) -> dict[str, Any] | None:
    proc = podman("container", "inspect", name, check=False)
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout)
    return data[0] if data else None


def labelled(kind: str, label: str, value: str) -> list[str]:
    """Names of containers, networks or volumes carrying label=value."""
    if kind == "container":
        out = podman("ps", "-a", "--filter", f"label={label}={value}", "--format", "{{.Names}}").stdout
    elif kind == "network":
        out = podman("network", "ls", "--filter", f"label={label}={value}", "--format", "{{.Name}}").stdout
    elif kind == "volume":
        out = podman("volume", "ls", "--filter", f"label={label}={value}", "--format", "{{.Name}}").stdout
    else:
        raise ValueError(kind)
    return sorted(line for line in out.splitlines() if line.strip())


def exec_in(container: str, command: Sequence[str], input: str | None = None, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
    interactive = ["-i"] if input is not None else []
    return podman("exec", *interactive, container, *command, check=check, input=input)
