#!/usr/bin/python
"""Documentation of the bitten_slurm_accounting action (plugins/action/bitten_slurm_accounting.py does the work)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: bitten_slurm_accounting
short_description: apply the inventory's Slurm cluster, QoS, accounts and users with sacctmgr, idempotently
description:
  - Reads the cluster, QoS, accounts, associations and users from slurmdbd with C(sacctmgr show), compares them with
    the site model built from the play's inventory (bitten_slurm.cluster_name, bitten_qos, bitten_accounts) and
    extra I(users), and runs only the C(sacctmgr --immediate) commands that close the difference.
  - Additive; QoS, accounts and users the inventory does not name are never changed or removed. For the QoS it
    names, the modelled limits are authoritative (a limit removed from the inventory is cleared).
  - Runs on a host with the Slurm client and munge that reaches slurmdbd (the accounting host); check mode reports
    the commands without running them. Returns them as I(commands).
options:
  site:
    description: apply the inventory's QoS and accounts (false - only register the cluster and the given users)
    type: bool
    default: true
  tres_timeout:
    description:
      - seconds to wait for the TRES that QoS limits use (gres/gpu) to appear in slurmdbd; slurmctld registers
        them when it starts, so apply QoS after slurmctld runs
    type: int
    default: 60
  users:
    description: extra users, e.g. the UCloud Integration Module's service user as an operator
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: user name
        type: str
        required: true
      accounts:
        description: accounts the user gets associations in (needed when the user does not exist yet)
        type: list
        elements: str
      default_account:
        description: the user's default account
        type: str
      admin_level:
        description: None, Operator or Administrator
        type: str
author: bitten developers
"""

EXAMPLES = r"""
- name: Make the UCloud Integration Module's user a Slurm operator
  bitten_slurm_accounting:
    site: false
    users:
      - {name: ucloud, accounts: [root], admin_level: Operator}
  delegate_to: "{{ groups['slurm_dbd'] | first }}"
  run_once: true
"""

RETURN = r"""
commands:
  description: the sacctmgr commands that ran (or would run, in check mode)
  type: list
  elements: str
  returned: always
"""
