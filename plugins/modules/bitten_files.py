#!/usr/bin/python
"""Ansible module: write several text files in one task (one module run for all of them, not two per file)."""

from __future__ import annotations

import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.bitten_write import atomic_write

DOCUMENTATION = r"""
module: bitten_files
short_description: write several text files with one owner, group and mode, each atomically, in one module run
description:
  - For each path of I(files), writes its content when the file's content differs, through a temporary file in the
    same directory and an atomic rename, then sets owner, group and mode when they differ.
  - A loop of M(ansible.builtin.copy) costs two module runs per file on the host (a stat, then the copy); this
    costs one for all of them, which is what matters on a slow host (a virtual node under emulation runs a module
    in seconds) and in every no-op run.
  - Every path is checked (absolute, text content, its directory exists) before any file is written.
  - Supports check mode (nothing is written; the result says what would change; a directory that an earlier task
    would have created is not required) and diff mode (C(--diff) shows each content change).
  - Only for files whose content may be shown (config files): a secret goes through C(bitten_secret_file).
options:
  files:
    description: absolute path -> the file's text
    type: dict
    required: true
  owner:
    description: owning user of every file
    type: str
    default: root
  group:
    description: owning group of every file
    type: str
    default: root
  mode:
    description: permissions of every file, octal string
    type: str
    default: "0644"
author: bitten developers
"""

EXAMPLES = r"""
- name: Write the cluster's config files
  bitten_files:
    files:
      /etc/slurm/slurm.conf: "{{ slurm_conf_text }}"
      /etc/slurm/cgroup.conf: "{{ cgroup_conf_text }}"
  register: written

- name: Find which would change, changing nothing
  bitten_files:
    files: "{{ rendered }}"
  check_mode: true
  changed_when: false
  register: would
"""

RETURN = r"""
changed_files:
  description: the paths whose content, owner, group or mode changed (or would, in check mode), in the given order
  type: list
  elements: str
  returned: always
content_changed:
  description: the paths whose content changed (or would), in the given order
  type: list
  elements: str
  returned: always
"""

#: a larger file's old content is not put into the diff
DIFF_MAX = 256 * 1024


def _read(module: AnsibleModule, path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        module.fail_json(msg=f"{path}: cannot read the current file: {exc}")
    return None  # not reached: fail_json exits


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "files": {"type": "dict", "required": True},
            "owner": {"type": "str", "default": "root"},
            "group": {"type": "str", "default": "root"},
            "mode": {"type": "str", "default": "0644"},
        },
        supports_check_mode=True,
    )
    files: dict[str, Any] = module.params["files"]
    for path, text in files.items():
        if not os.path.isabs(path):
            module.fail_json(msg=f"{path}: not an absolute path; nothing was written")
        if not isinstance(text, str):
            module.fail_json(msg=f"{path}: the content is a {type(text).__name__}, not text; nothing was written")
        # in check mode an earlier task that would create the directory did not run: the file would be new
        if not module.check_mode and not os.path.isdir(os.path.dirname(path)):
            module.fail_json(msg=f"{path}: directory {os.path.dirname(path)} does not exist; nothing was written")
    changed_files: list[str] = []
    content_changed: list[str] = []
    diffs: list[dict[str, str]] = []
    for path, text in files.items():
        wanted = text.encode()
        current = _read(module, path)
        differs = current != wanted
        if differs:
            content_changed.append(path)
            if module._diff:
                before = "" if current is None else (current.decode(errors="replace") if len(current) <= DIFF_MAX
                                                     else "(the old content is too large to show)\n")
                diffs.append({"before_header": path, "after_header": path, "before": before, "after": text})
            if not module.check_mode:
                atomic_write(module, path, wanted)
        attrs = False
        if os.path.exists(path):
            file_args = module.load_file_common_arguments(
                {"path": path, "owner": module.params["owner"], "group": module.params["group"],
                 "mode": module.params["mode"]})
            attrs = module.set_fs_attributes_if_different(file_args, False)
        if differs or attrs:
            changed_files.append(path)
    result: dict[str, Any] = {"changed": bool(changed_files), "changed_files": changed_files,
                              "content_changed": content_changed}
    if diffs:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
