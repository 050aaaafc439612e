"""The lab's layers: each capability registers its emulators, test doubles and summary sections here.

`bitten lab up` imports this module before it starts services, so a layer only has to be listed below.
"""

from __future__ import annotations

import importlib

#: modules whose import appends to bitten.lab.lab.SERVICES / SUMMARIES (one per layer)
LAYERS: tuple[str, ...] = (
    "bitten.redfish.lab",
    "bitten.lab.provision",
    "bitten.lab.slurm",
    "bitten.lab.gpu",
    "bitten.ucloud.lab",
    "bitten.cooling.lab",
)


def load_layers() -> None:
    for module in LAYERS:
        importlib.import_module(module)
