"""Ansible front end of bitten.gpu for the gpu role: driver branches, nvidia-smi -L, NVLink packages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def driver_problems(architecture: str, version: str | int, kernel_modules: str = "open",
                    what: str = "gpu_driver_branch") -> list[str]:
    from bitten.gpu.drivers import driver_problems as problems

    return problems(str(architecture), version, str(kernel_modules), str(what))


def driver_branch(version: str | int) -> int:
    from bitten.gpu.drivers import branch_of

    return branch_of(version)


def gpu_list(text: str) -> list[dict[str, Any]]:
    from bitten.gpu.smi import parse_list

    return [{"index": g.index, "name": g.name, "uuid": g.uuid} for g in parse_list(str(text))]


def gpu_list_problems(text: str, count: int, slurm_type: str, profile: str = "") -> list[str]:
    """Why ``nvidia-smi -L`` output does not match the hardware profile (empty when it does)."""
    from bitten.gpu.smi import matches_type, parse_list

    gpus = parse_list(str(text))
    where = f" (hardware profile {profile})" if profile else ""
    problems = []
    if len(gpus) != int(count):
        problems.append(f"nvidia-smi -L lists {len(gpus)} GPUs, the inventory says {count}{where}")
    problems += [f"GPU {g.index} is {g.name!r}, not a {slurm_type}{where}" for g in gpus
                 if not matches_type(g.name, str(slurm_type))]
    return problems


def nvlink_packages(gpu: dict[str, Any] | None, branch: str | int) -> dict[str, list[str]]:
    """The NVLink packages of a node's GPUs (gpu-node.json "gpu"), as bitten.gpu.nvlink groups them."""
    from bitten.gpu.drivers import branch_of
    from bitten.gpu.nvlink import packages

    if not gpu:
        return {"fabric_manager": [], "nvlsm": [], "debian": []}
    return packages(str(gpu.get("architecture", "")), bool(gpu.get("nvswitch")), branch_of(branch))


def nvlink_stack(gpu: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the node's NVSwitch generation needs: {nvswitch_generation, fabric_manager, nvlsm, example} or None."""
    from dataclasses import asdict

    from bitten.gpu.nvlink import stack_for

    stack = stack_for(str((gpu or {}).get("architecture", "")), bool((gpu or {}).get("nvswitch")))
    return asdict(stack) if stack else None


def dpkg_versions(text: str) -> dict[str, str]:
    """Installed packages from ``dpkg-query -W -f='${Package} ${Version} ${db:Status-Status}\\n'`` output."""
    out: dict[str, str] = {}
    for line in str(text).splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == "installed":
            out[parts[0]] = parts[1]
    return out


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "bitten_gpu_driver_problems": driver_problems,
            "bitten_gpu_driver_branch": driver_branch,
            "bitten_gpu_list": gpu_list,
            "bitten_gpu_list_problems": gpu_list_problems,
            "bitten_gpu_dpkg_versions": dpkg_versions,
            "bitten_gpu_nvlink_packages": nvlink_packages,
            "bitten_gpu_nvlink_stack": nvlink_stack,
        }
