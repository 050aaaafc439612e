"""Ansible front end of bitten.ucloud.provider: the site's provider on UCloud/Core, created or adopted."""

from __future__ import annotations

import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: bitten_ucloud_provider
short_description: the site's provider on UCloud/Core (created, adopted or updated)
description:
  - Makes the provider on UCloud/Core match name, domain and port (bitten.ucloud.provider.ensure) and returns its
    refresh token and public key for the Integration Module. Core cannot delete providers, so there is no
    state=absent. Runs where bitten is installed (the controller). Use no_log on the task.
options:
  core_url: {description: UCloud/Core, e.g. https://cloud.sdu.dk, type: str, required: true}
  ca_file: {description: CA bundle for Core's certificate (default the system store), type: path}
  admin_token: {description: a Core token allowed to create providers, type: str, required: true, no_log: true}
  project: {description: the UCloud project that owns the provider, type: str, required: true}
  name: {description: the provider id (bitten_ucloud.provider_id), type: str, required: true}
  domain: {description: public host name of the frontend (bitten_ucloud.public_host), type: str, required: true}
  port: {description: public port, type: int, default: 443}
  credentials_dir:
    description: write refresh-token and ucloud_key.pub (0600) here too (the lab's `bitten ucloud check` uses them)
    type: path
"""

RETURN = r"""
resource_id: {description: Core's resource id of the provider, type: str, returned: success}
refresh_token: {description: the provider's refresh token (secret), type: str, returned: success}
public_key: {description: Core's public key for the provider, bare base64 DER, type: str, returned: success}
action: {description: created, adopted or updated, type: str, returned: success}
"""


def _write(path: str, content: str) -> bool:
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == content:
                return False
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
    return True


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "core_url": {"type": "str", "required": True},
            "ca_file": {"type": "path"},
            "admin_token": {"type": "str", "required": True, "no_log": True},
            "project": {"type": "str", "required": True},
            "name": {"type": "str", "required": True},
            "domain": {"type": "str", "required": True},
            "port": {"type": "int", "default": 443},
            "credentials_dir": {"type": "path"},
        },
        supports_check_mode=True,
    )
    from bitten.ucloud import provider
    from bitten.ucloud.core import CoreClient, CoreError, ProviderSpec

    p: dict[str, Any] = module.params
    spec = ProviderSpec(name=p["name"], domain=p["domain"], port=p["port"])
    try:
        with CoreClient(p["core_url"], ca_file=p["ca_file"]) as client:
            outcome = provider.ensure(client, spec, p["admin_token"], p["project"], check_only=module.check_mode)
    except CoreError as exc:
        module.fail_json(msg=f"provider {p['name']} on UCloud/Core: {exc}")
    found = outcome.provider
    changed = outcome.changed
    if p["credentials_dir"] and found.refresh_token and not module.check_mode:
        os.makedirs(p["credentials_dir"], mode=0o700, exist_ok=True)
        changed |= _write(os.path.join(p["credentials_dir"], "refresh-token"), found.refresh_token + "\n")
        changed |= _write(os.path.join(p["credentials_dir"], "ucloud_key.pub"), found.public_key + "\n")
    module.exit_json(changed=changed, action=outcome.action, resource_id=found.resource_id,
                     refresh_token=found.refresh_token, public_key=found.public_key)


if __name__ == "__main__":
    main()
