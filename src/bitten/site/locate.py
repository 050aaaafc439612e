"""Where a value of the inventory came from (file and line), for problems that name their place."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bitten.site.inventory import InventoryData
from bitten.site.problems import origin_of

#: the names each site-wide section declares, valid or not (so a check does not report a name as missing
#: when its definition is only invalid)
Declared = dict[str, set[str]]


class Locator:
    """Finds the file (and line) a value came from, for messages."""

    def __init__(self, data: InventoryData, reference_host: str | None) -> None:
        self.data = data
        self.reference_host = reference_host

    def find(self, host: str | None, var: str, path: Sequence[str | int] = ()) -> str:
        owner = host or self.reference_host
        fallback = self.data.host_files.get(owner or "", self.data.sources[0] if self.data.sources else "?")
        if owner is None:
            return fallback
        if self.data.locate is not None:
            return self.data.locate(owner, var, path) or fallback
        value: Any = self.data.hostvars.get(owner, {}).get(var)
        best = origin_of(value)
        for key in path:
            try:
                value = value[key]
            except (KeyError, IndexError, TypeError):
                break
            best = origin_of(value) or best
        return best or fallback
