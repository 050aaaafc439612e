"""Ansible front end of bitten.slurm.conf: what a changed slurm.conf needs from the running daemons."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def change_plan(old: str | None, new: str, version: str, changed_files: Iterable[str]) -> str:
    """'none', 'reconfigure' or 'restart' (see bitten.slurm.conf.change_plan); an empty ``old`` means none."""
    from bitten.slurm.conf import change_plan as plan

    return plan(old or None, new, version or "24.11", changed_files)


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"bitten_slurm_change_plan": change_plan}
