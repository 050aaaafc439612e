"""The energy capability: what it adds to the site (cross-checks; generated files and facts as they come).

Until bitten.core.capability lands on main this module declares its own small Capability record; the composition
layer (bitten.capabilities) will read the same attribute, CAPABILITY.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bitten.energy.checks import CHECKS

Check = Callable[[Any, Any, dict[str, set[str]]], Iterable[Any]]


@dataclass(frozen=True)
class Capability:
    name: str
    checks: tuple[Check, ...] = ()
    files: tuple[Any, ...] = field(default=())


CAPABILITY = Capability(name="energy", checks=CHECKS)
