"""Provisioning nodes through their BMCs over DMTF Redfish (HPE iLO and plain Redfish), on sushy.

For one node: read the inventory, plan the desired state (BIOS attributes through ``@Redfish.Settings``, a
one-time boot to PXE or to virtual media, power) and apply it. For a fleet: bounded concurrency, retries with
backoff, every failure reported at the end. Front ends: ``bitten hardware`` (CLI), the ``bitten_redfish``
Ansible module, and the Pulumi stack in stacks/hardware.
"""

from __future__ import annotations

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
from bitten.hardware.node import Node
from bitten.hardware.plan import Change, Desired, Observed, Options, Plan, make_plan

__all__ = [
    "Backoff", "Change", "Connection", "CredentialStore", "Credentials", "CredentialsError", "Desired", "Endpoint",
    "FleetResult", "Inventory", "Limits", "Node", "NodeResult", "Observed", "Options", "Plan", "PlanError",
    "PowerTimeout", "RedfishAuthError", "RedfishError", "RedfishRequestError", "RedfishServerError",
    "RedfishUnreachable", "RedfishUnsupported", "Settings", "Target", "Timeouts", "Tls", "make_plan",
    "read_inventory", "run_fleet", "run_node",
]
