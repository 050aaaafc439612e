"""The lab's layers: what `make lab` starts and prints for each capability (emulators, test doubles, summaries).

Each module appends to bitten.lab.service.SERVICES / SUMMARIES when imported; load() imports them all.
"""

from __future__ import annotations

import importlib

#: one module per capability that shows up in the lab, in the order its services start
LAYERS: tuple[str, ...] = (
    "bitten.lab.layers.hardware",
    "bitten.lab.layers.provision",
    "bitten.lab.layers.slurm",
    "bitten.lab.layers.gpu",
    "bitten.lab.layers.ucloud",
    "bitten.lab.layers.cooling",
    "bitten.lab.layers.energy",
)


def load() -> None:
    for module in LAYERS:
        importlib.import_module(module)
