"""Ansible front end of bitten.hardware: one node's BMC state (BIOS, one-time boot, power) or its inventory."""

from __future__ import annotations

import sys
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: bitten_redfish
short_description: BIOS attributes, one-time boot and power of one node through its BMC (Redfish)
description:
  - Plans and applies a node's desired BMC state with bitten.hardware, the same code as C(bitten hardware) and the
    Pulumi stack. BIOS attributes go to the BMC's C(@Redfish.Settings) object and apply at the next reboot (they are
    reported as pending until then). The one-time boot (Pxe, Cd with an ISO URL, Hdd) is set when the node is
    powered on or restarted by this task. HPE iLO (sessions, Managers/1/VirtualMedia, Oem.Hpe) and plain Redfish.
  - Transient failures (timeouts, connection resets, 5xx) are retried with backoff; 401/403 fail at once.
  - In check mode nothing is written; the result holds the plan.
  - "Runs on the controller (C(connection: local)) with a Python that can import bitten."
options:
  host:
    description: Inventory name of the node, for messages.
    type: str
    required: true
  username:
    description: BMC account (keep it in ansible-vault).
    type: str
    required: true
  password:
    description: Password of the BMC account (keep it in ansible-vault; never logged).
    type: str
    required: true
  ca_path:
    description: CA bundle that signed the BMC certificates; the system trust store when unset.
    type: path
  validate_certs:
    description: Verify the BMC's TLS certificate. Turn off only for a BMC you cannot give a CA for.
    type: bool
    default: true
  state:
    description: C(present) converges the desired state; C(inventory) only reads the hardware facts.
    type: str
    default: present
    choices: [present, inventory]
  bios:
    description: Desired BIOS attributes (name -> value).
    type: dict
    default: {}
  boot:
    description: One-time boot when the node is powered on (mode, target Pxe/Cd/Hdd/None, image_url for Cd).
    type: dict
    default: {}
  power:
    description: Desired power state.
    type: str
    default: "On"
    choices: ["On", "Off"]
  boot_mac:
    description: MAC the node PXE-boots from; the BMC must report it, or nothing is written.
    type: str
  check_boot_mac:
    description: Refuse a BMC that does not report O(boot_mac).
    type: bool
    default: true
  reboot:
    description: Restart a running node whose BIOS changes wait for a reboot (it boots through the one-time boot).
    type: bool
    default: false
  wait:
    description: Wait for power transitions.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for the BMC to answer a request.
    type: float
    default: 60
  power_timeout:
    description: Seconds a power transition may take.
    type: float
    default: 300
  retries:
    description: Retries on timeouts, connection resets and 5xx answers.
    type: int
    default: 4
extends_documentation_fragment:
  - bitten_redfish_bmc
author: bitten
"""

EXAMPLES = r"""
- name: Converge the node's BMC
  bitten_redfish:
    host: "{{ inventory_hostname }}"
    bmc: "{{ bitten_bmc }}"
    username: "{{ hardware_bmc_username }}"
    password: "{{ hardware_bmc_password }}"
    ca_path: /etc/bitten/bmc-ca.pem
    bios: {WorkloadProfile: HighPerformanceCompute, ProcSMT: Disabled}
    boot: {target: Pxe}
    power: "On"
"""

RETURN = r"""
plan:
  description: The plan (changes, pending BIOS values, notes, problems), as bitten.redfish.Plan.as_dict().
  type: dict
  returned: when state is present
plan_lines:
  description: The plan, one human-readable line per change, pending value and note.
  type: list
  elements: str
  returned: when state is present
pending:
  description: Desired BIOS values that wait for the next reboot.
  type: dict
  returned: when state is present
power:
  description: Power state after the task.
  type: str
  returned: always
inventory:
  description: Model, serial, MACs, processors, memory (and GPUs with state inventory) as the BMC reports them.
  type: dict
  returned: success
"""


def argument_spec() -> dict[str, Any]:
    """The module's arguments; the flavour choices are the flavour modules registered in bitten.core.redfish."""
    try:
        from bitten.core.redfish import flavours

        flavour_choices: list[str] | None = list(flavours.names())
    except ImportError:  # main() reports that bitten cannot be imported
        flavour_choices = None
    return {**SPEC, "bmc": {"type": "dict", "required": True, "options": {
        "address": {"type": "str", "required": True},
        "scheme": {"type": "str", "default": "https", "choices": ["https", "http"]},
        "system_id": {"type": "str", "default": "1"},
        "flavour": {"type": "str", "default": "hpe_ilo", "choices": flavour_choices},
    }}}


SPEC: dict[str, Any] = {
    "host": {"type": "str", "required": True},
    "username": {"type": "str", "required": True},
    "password": {"type": "str", "required": True, "no_log": True},
    "ca_path": {"type": "path"},
    "validate_certs": {"type": "bool", "default": True},
    "state": {"type": "str", "default": "present", "choices": ["present", "inventory"]},
    "bios": {"type": "dict", "default": {}},
    "boot": {"type": "dict", "default": {}},
    "power": {"type": "str", "default": "On", "choices": ["On", "Off"]},
    "boot_mac": {"type": "str"},
    "check_boot_mac": {"type": "bool", "default": True},
    "reboot": {"type": "bool", "default": False},
    "wait": {"type": "bool", "default": True},
    "timeout": {"type": "float", "default": 60},
    "power_timeout": {"type": "float", "default": 300},
    "retries": {"type": "int", "default": 4},
}


def _diff(plan: Any) -> dict[str, Any]:
    before = {f"{c.area}.{c.item}": c.current for c in plan.changes}
    after = {f"{c.area}.{c.item}": c.desired for c in plan.changes}
    return {"before": before, "after": after, "before_header": "BMC now", "after_header": "BMC after apply"}


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    try:
        from pydantic import ValidationError

        from bitten.hardware import Backoff, Credentials, DesiredBmcState, Endpoint, Options, Timeouts, Tls, run_node
        from bitten.hardware.fleet import Settings, Target
        from bitten.site.model import Bmc, Boot
    except ImportError as exc:
        module.fail_json(msg=f"{sys.executable} cannot import bitten ({exc}); run this module on the controller "
                         "with ansible_python_interpreter={{ ansible_playbook_python }}")
    try:
        bmc = Bmc.model_validate(p["bmc"])
        boot = Boot.model_validate(p["boot"] or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'boot'}: {e['msg']}" for e in exc.errors())
        module.fail_json(msg=f"host {p['host']}: invalid bmc or boot: {problems}")
    endpoint = Endpoint(host=p["host"], url=bmc.url, system_id=bmc.system_id, flavour=bmc.flavour)
    desired = DesiredBmcState(bios=p["bios"] or {}, boot=boot, power=p["power"], boot_mac=p["boot_mac"])
    settings = Settings(tls=Tls(verify=p["validate_certs"], ca_file=p["ca_path"]),
                        timeouts=Timeouts(connect=min(10.0, p["timeout"]), read=p["timeout"],
                                          power=p["power_timeout"]),
                        retry=Backoff(attempts=p["retries"] + 1))
    options = Options(reboot=p["reboot"], check_boot_mac=p["check_boot_mac"], wait=p["wait"])
    target = Target(endpoint, desired, Credentials(p["username"], p["password"]))

    if p["state"] == "inventory":
        result = run_node(target, "inventory", options, settings)
        if not result.ok:
            module.fail_json(msg=result.failure, error_kind=result.error_kind)
        module.exit_json(changed=False, power=result.power,
                         inventory=result.inventory.as_dict() if result.inventory else None)

    action = "plan" if module.check_mode else "apply"
    result = run_node(target, action, options, settings, with_inventory=True)
    plan = result.plan
    out: dict[str, Any] = {
        "plan": plan.as_dict() if plan else None, "plan_lines": plan.lines() if plan else [],
        "pending": result.pending or (dict(plan.pending) if plan else {}), "power": result.power,
        "inventory": result.inventory.as_dict() if result.inventory else None,
        "requests": result.requests, "retries": result.retries,
    }
    if not result.ok:
        module.fail_json(msg=result.failure, error_kind=result.error_kind, **out)
    changed = bool(plan and plan.changed)
    if module._diff and plan and plan.changed:
        out["diff"] = _diff(plan)
    module.exit_json(changed=changed, **out)


if __name__ == "__main__":
    main()
