"""Ansible front end of the template filters (generic and the capabilities'), so role templates format like
`bitten render`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        from bitten.capabilities import FILTERS

        return {f"bitten_{name}": fn for name, fn in FILTERS.items()}
