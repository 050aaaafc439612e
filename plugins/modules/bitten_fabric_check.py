#!/usr/bin/python
"""Documentation of the bitten_fabric_check action (plugins/action/bitten_fabric_check.py does the work)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: bitten_fabric_check
short_description: compare the discovered InfiniBand fabric with the inventory's cabling plan
description:
  - Runs C(ibnetdiscover) and C(iblinkinfo) on the host (or reads recorded outputs there), compares what they show
    with bitten_fabric from the play's inventory and reports miscabled and misplaced HCA ports, missing links,
    links below the fabric's width and speed, unexpected devices and switches (bitten.fabric.compare).
  - Read-only; runs the same in check mode and never reports a change.
options:
  ibnetdiscover_file:
    description: recorded ibnetdiscover output on the host, used instead of running the tool
    type: path
  iblinkinfo_file:
    description: recorded iblinkinfo output on the host, used instead of running the tool
    type: path
  timeout:
    description: seconds each tool may run
    type: int
    default: 120
  fail_on_findings:
    description: fail the task when there are findings (false - only return them)
    type: bool
    default: true
"""

RETURN = r"""
findings:
  description: one dict per fault (kind, where, message, host)
  type: list
  elements: dict
  returned: always
"""
