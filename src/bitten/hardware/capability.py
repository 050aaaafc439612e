"""The hardware capability (BMC state through Redfish): its cross-checks. It writes no file to a host."""

from __future__ import annotations

from bitten.core.capability import Capability
from bitten.hardware.checks import check_bmcs, check_firmware, check_flavours

CAPABILITY = Capability(name="hardware", checks=(check_bmcs, check_flavours, check_firmware))
