#!/usr/bin/python
"""Ansible module: write a secret file (binary allowed) from base64 content, never showing the content."""

from __future__ import annotations

import base64
import binascii
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.bitten_write import atomic_write

DOCUMENTATION = r"""
module: bitten_secret_file
short_description: write a key or other secret file from base64 content, atomically and without logging it
description:
  - Writes the bytes given as base64 to I(path) when they differ from what is there, with the given owner, group
    and mode, through a temporary file in the same directory and an atomic rename.
  - Unlike M(ansible.builtin.copy) with C(content), binary data (a munge key) survives; the content is a no_log
    parameter and never appears in results, diffs or logs. Supports check mode.
options:
  path:
    description: absolute path of the file
    type: path
    required: true
  content_b64:
    description: the file's bytes, base64-encoded (from vault, or read from another host with slurp)
    type: str
    required: true
    no_log: true
  owner:
    description: owning user
    type: str
    default: root
  group:
    description: owning group
    type: str
    default: root
  mode:
    description: permissions, octal string
    type: str
    default: "0400"
author: bitten developers
"""

EXAMPLES = r"""
- name: Install the cluster's munge key
  bitten_secret_file:
    path: /etc/munge/munge.key
    content_b64: "{{ munge_key_b64 }}"
    owner: munge
    group: munge
    mode: "0400"
  no_log: true
"""

RETURN = r"""
path:
  description: the file written
  type: str
  returned: always
"""


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "content_b64": {"type": "str", "required": True, "no_log": True},
            "owner": {"type": "str", "default": "root"},
            "group": {"type": "str", "default": "root"},
            "mode": {"type": "str", "default": "0400"},
        },
        supports_check_mode=True,
    )
    path = module.params["path"]
    try:
        wanted = base64.b64decode(module.params["content_b64"], validate=True)
    except (binascii.Error, ValueError):
        module.fail_json(msg=f"{path}: content_b64 is not valid base64 (the content is not shown)")
    if not wanted:
        module.fail_json(msg=f"{path}: refusing to write an empty secret")
    try:
        with open(path, "rb") as handle:
            current: bytes | None = handle.read()
    except FileNotFoundError:
        current = None
    except PermissionError as exc:
        module.fail_json(msg=f"{path}: cannot read the current file: {exc}")

    changed = current != wanted
    if changed and not module.check_mode:
        atomic_write(module, path, wanted)
    file_args = module.load_file_common_arguments(
        {"path": path, "owner": module.params["owner"], "group": module.params["group"],
         "mode": module.params["mode"]}
    )
    if os.path.exists(path):
        changed = module.set_fs_attributes_if_different(file_args, changed)
    module.exit_json(changed=changed, path=path)


if __name__ == "__main__":
    main()
