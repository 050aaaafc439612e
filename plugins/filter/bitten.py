"""Ansible front end of bitten.templating's filters, so role templates format like `bitten render`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        from bitten.templating import FILTERS

        return {f"bitten_{name}": fn for name, fn in FILTERS.items()}
