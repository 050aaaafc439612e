"""Provisioning nodes through their BMCs over DMTF Redfish (HPE iLO and plain Redfish), on sushy.

For one node: read the inventory, plan the desired state (BIOS attributes through ``@Redfish.Settings``, a
one-time boot to PXE or to virtual media, power) and apply it. For a fleet: bounded concurrency, retries with
backoff, every failure reported at the end. Front ends: ``bitten hardware`` (CLI), the ``bitten_redfish``
Ansible module, and the Pulumi stack in stacks/hardware.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the real names, for type checkers
    from bitten.core.redfish.connection import Connection
    from bitten.core.redfish.credentials import Credentials
    from bitten.core.redfish.endpoint import Endpoint, Limits, Timeouts, Tls
    from bitten.core.redfish.errors import (
        CredentialsError,
        PlanError,
        PowerTimeout,
        RedfishAuthError,
        RedfishError,
        RedfishRequestError,
        RedfishServerError,
        RedfishUnreachable,
        RedfishUnsupported,
    )
    from bitten.core.retry import Backoff
    from bitten.hardware.credentials import CredentialStore
    from bitten.hardware.fleet import FleetResult, NodeResult, Settings, Target, run_fleet, run_node
    from bitten.hardware.inventory import Inventory, read_inventory
    from bitten.hardware.node import BmcNode
    from bitten.hardware.plan import Change, DesiredBmcState, Observed, Options, Plan, make_plan

# The names below load on first use (PEP 562): importing a part of bitten.hardware (its capability, its checks)
# does not pull in sushy and the fleet, which keeps every `bitten` command's start-up short.
_HOMES: dict[str, str] = {
    "Backoff": "bitten.core.retry",
    "BmcNode": "bitten.hardware.node",
    "Change": "bitten.hardware.plan",
    "Connection": "bitten.core.redfish.connection",
    "CredentialStore": "bitten.hardware.credentials",
    "Credentials": "bitten.core.redfish.credentials",
    "CredentialsError": "bitten.core.redfish.errors",
    "DesiredBmcState": "bitten.hardware.plan",
    "Endpoint": "bitten.core.redfish.endpoint",
    "FleetResult": "bitten.hardware.fleet",
    "Inventory": "bitten.hardware.inventory",
    "Limits": "bitten.core.redfish.endpoint",
    "NodeResult": "bitten.hardware.fleet",
    "Observed": "bitten.hardware.plan",
    "Options": "bitten.hardware.plan",
    "Plan": "bitten.hardware.plan",
    "PlanError": "bitten.core.redfish.errors",
    "PowerTimeout": "bitten.core.redfish.errors",
    "RedfishAuthError": "bitten.core.redfish.errors",
    "RedfishError": "bitten.core.redfish.errors",
    "RedfishRequestError": "bitten.core.redfish.errors",
    "RedfishServerError": "bitten.core.redfish.errors",
    "RedfishUnreachable": "bitten.core.redfish.errors",
    "RedfishUnsupported": "bitten.core.redfish.errors",
    "Settings": "bitten.hardware.fleet",
    "Target": "bitten.hardware.fleet",
    "Timeouts": "bitten.core.redfish.endpoint",
    "Tls": "bitten.core.redfish.endpoint",
    "make_plan": "bitten.hardware.plan",
    "read_inventory": "bitten.hardware.inventory",
    "run_fleet": "bitten.hardware.fleet",
    "run_node": "bitten.hardware.fleet",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


__all__ = [
    "Backoff",
    "BmcNode",
    "Change",
    "Connection",
    "CredentialStore",
    "Credentials",
    "CredentialsError",
    "DesiredBmcState",
    "Endpoint",
    "FleetResult",
    "Inventory",
    "Limits",
    "NodeResult",
    "Observed",
    "Options",
    "Plan",
    "PlanError",
    "PowerTimeout",
    "RedfishAuthError",
    "RedfishError",
    "RedfishRequestError",
    "RedfishServerError",
    "RedfishUnreachable",
    "RedfishUnsupported",
    "Settings",
    "Target",
    "Timeouts",
    "Tls",
    "make_plan",
    "read_inventory",
    "run_fleet",
    "run_node",
]
