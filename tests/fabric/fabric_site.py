"""A small valid site with a fabric (the tests/inventories/_base hosts), and a way to change it."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from bitten.capabilities import build_site
from bitten.site import InventoryData, Site, load_inventory

from conftest import BROKEN

#: two leaves under one spine; OpenSM on ctl (master) and dbd (standby)
FABRIC: dict[str, Any] = {
    "name": "tiny-ib",
    "subnet_manager": {"type": "opensm", "hosts": ["ctl", "dbd"]},
    "switches": {
        "leaf1": {"role": "leaf", "guid": "0xb83fd20300000001", "management": "10.3.0.1"},
        "leaf2": {"role": "leaf", "guid": "0xb83fd20300000002"},
        "spine1": {"role": "spine", "guid": "0xb83fd20300000003"},
    },
    "trunks": [
        {"switch": "leaf1", "ports": "33-34", "peer": "spine1", "peer_ports": "1-2"},
        {"switch": "leaf2", "ports": "33-34", "peer": "spine1", "peer_ports": "3-4"},
    ],
    "cables": [
        {"node": "gpu[01-02]", "hca": "mlx5_[0-1]", "switch": "leaf1", "switch_port": "1-4",
         "guids": ["0x946dae0300000101", "0x946dae0300000102", "0x946dae0300000201", "0x946dae0300000202"]},
        {"node": "cpu01", "switch": "leaf2", "switch_port": 1, "guids": ["0x946dae0300000301"]},
        {"node": "ctl", "switch": "leaf2", "switch_port": 2, "guids": ["0x946dae0300000401"]},
        {"node": "dbd", "switch": "leaf2", "switch_port": 3},
    ],
}


@cache
def _base() -> InventoryData:
    return load_inventory([BROKEN / "_base"])


def data_with(fabric: dict[str, Any] | None) -> InventoryData:
    data = copy.deepcopy(_base())
    for hv in data.hostvars.values():
        if fabric is None:
            hv.pop("bitten_fabric", None)
        else:
            hv["bitten_fabric"] = copy.deepcopy(fabric)
    return data


def site_with(fabric: dict[str, Any] | None = None, **changes: Any) -> Site:
    """The base site with FABRIC (top-level keys replaced by ``changes``)."""
    value = copy.deepcopy(FABRIC if fabric is None else fabric)
    value.update(copy.deepcopy(changes))
    return build_site(data_with(value))
