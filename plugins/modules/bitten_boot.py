"""Ansible front end of bitten.provision.boot: wait until one provisioned node reports up with its image."""

from __future__ import annotations

from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: bitten_boot
short_description: wait for a provisioned node's boot report; finish a disk deploy through its BMC
description:
  - Waits with bitten.provision.boot until the node's report ("up", with the image it runs) reaches the
    provisioner after it was powered on. A disk node first reports "deployed" from its deploy ramdisk; the module
    then switches its boot target to Hdd through the BMC (read back), restarts it once and waits for "up" from
    its disk (that is the only change it makes).
  - A node that never asks for DHCP or never reports fails at its deadline, with what the provisioner saw (lease,
    last report) and its BMC's view (power state, BootProgress where the BMC gives it).
  - A node that runs another image than its profile names is up, with C(pending_reboot) set.
  - Runs on the controller (C(connection: local)) with a Python that can import bitten. Check mode only reports.
options:
  node:
    description: The node's boot as the site model has it (an entry of lookup('bitten_provision').nodes).
    type: dict
    required: true
  name:
    description: The node's inventory name.
    type: str
    required: true
  status_url:
    description: The provisioner's status URL (http://<provisioner>/status).
    type: str
    required: true
  since:
    description: When this run powered the node on (epoch seconds); reports before it do not count. Unset
      when the node was already running.
    type: float
  timeout:
    description: Seconds to wait for the node (bitten_provision.boot_timeout_s).
    type: float
    default: 900
  poll:
    description: Seconds between two looks at the provisioner.
    type: float
    default: 3
  bmc:
    description: Where the node's BMC answers (its bitten_bmc).
    type: dict
    required: true
  username:
    description: BMC account.
    type: str
    required: true
  password:
    description: BMC password (never logged).
    type: str
    required: true
  ca_path:
    description: CA bundle that signed the BMC certificates.
    type: path
  validate_certs:
    description: Verify the BMC's TLS certificate.
    type: bool
    default: true
"""

RETURN = r"""
boot:
  description: the node's boot - ok, state, image_id, deploy, root, lease_ip, seconds_to_lease, seconds_to_up,
    pending_reboot, problem, bmc (power, boot_progress, boot_target), steps
  type: dict
  returned: always
"""


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "node": {"type": "dict", "required": True},
            "name": {"type": "str", "required": True},
            "status_url": {"type": "str", "required": True},
            "since": {"type": "float"},
            "timeout": {"type": "float", "default": 900},
            "poll": {"type": "float", "default": 3},
            "bmc": {"type": "dict", "required": True},
            "username": {"type": "str", "required": True},
            "password": {"type": "str", "required": True, "no_log": True},
            "ca_path": {"type": "path"},
            "validate_certs": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    import ipaddress

    from bitten.core.redfish.credentials import Credentials
    from bitten.core.redfish.endpoint import Endpoint, Tls
    from bitten.provision.bmc import RedfishBmc
    from bitten.provision.boot import http_status, wait_for_boot
    from bitten.provision.nodes import BootNode

    p: dict[str, Any] = module.params
    n = p["node"]
    node = BootNode(name=p["name"], fqdn=n["fqdn"], mac=n["mac"], ip=ipaddress.IPv4Address(n["ip"]),
                    network=ipaddress.IPv4Network(n["network"]), profile=n["profile"], image=n["image"],
                    image_id=n["image_id"], deploy=n["deploy"], disk=n.get("disk"), console=None, kernel_args=())
    bmc_args = p["bmc"]
    endpoint = Endpoint(host=p["name"], url=f"{bmc_args.get('scheme', 'https')}://{bmc_args['address']}",
                        system_id=str(bmc_args.get("system_id", "1")), flavour=bmc_args.get("flavour", "hpe_ilo"))
    bmc = RedfishBmc(endpoint, Credentials(p["username"], p["password"]),
                     Tls(verify=p["validate_certs"], ca_file=p["ca_path"]))
    if module.check_mode:
        view = bmc.view()
        module.exit_json(changed=False, boot={"node": p["name"], "ok": True, "state": "check mode",
                                              "bmc": view.__dict__, "steps": []})
    result = wait_for_boot(node, http_status(p["status_url"]), bmc, p["since"], p["timeout"], poll=p["poll"])
    data = result.as_dict()
    if not result.ok:
        bmc_text = result.bmc.describe() if result.bmc else "no BMC view"
        module.fail_json(msg=f"{p['name']}: {result.problem}; {bmc_text}", changed=result.changed, boot=data)
    module.exit_json(changed=result.changed, boot=data)


if __name__ == "__main__":
    main()
