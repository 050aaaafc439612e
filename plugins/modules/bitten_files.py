#!/usr/bin/python
"""Ansible module: write several text files in one task (one module run for all of them, not two per file)."""

from __future__ import annotations

import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.bitten_write import atomic_write, validate_content

DOCUMENTATION = r"""
module: bitten_files
short_description: write several text files, each atomically, and the directories they go in, in one module run
description:
  - For each path of I(files), writes its content when the file's content differs, through a temporary file in the
    same directory and an atomic rename, then sets owner, group and mode when they differ.
  - A loop of M(ansible.builtin.copy) costs two module runs per file on the host (a stat, then the copy); this
    costs one for all of them, which is what matters on a slow host (a virtual node under emulation runs a module
    in seconds) and in every no-op run.
  - Every path is checked (absolute, text content, its directory exists or is one of I(directories), a
    validation command names C(%s)) before any file or directory is written.
  - Supports check mode (nothing is written; the result says what would change; a directory that an earlier task
    would have created is not required) and diff mode (C(--diff) shows each content change).
  - Only for files whose content may be shown (config files): a secret goes through C(bitten_secret_file).
options:
  files:
    description:
      - absolute path -> the file's text, or a dict with C(content) and any of C(owner), C(group), C(mode) (which
        override the task's for that file) and C(validate), a command with C(%s) for the new file, run without a
        shell before it replaces the old one (as M(ansible.builtin.copy)'s), e.g. C(/usr/sbin/visudo -cf %s)
    type: dict
    required: true
  directories:
    description: absolute paths of directories to create first when missing (root:root, 0755, parents included)
    type: list
    elements: str
    default: []
  owner:
    description: owning user of every file that does not name its own
    type: str
    default: root
  group:
    description: owning group of every file that does not name its own
    type: str
    default: root
  mode:
    description: permissions of every file that does not name its own, octal string
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

- name: Write the sudoers drop-in and the journald drop-in (and its directory)
  bitten_files:
    directories: [/etc/systemd/journald.conf.d]
    files:
      /etc/systemd/journald.conf.d/90-site.conf: "{{ journald_text }}"
      /etc/sudoers.d/site-admins:
        content: "%admins ALL=(ALL:ALL) ALL\n"
        mode: "0440"
        validate: /usr/sbin/visudo -cf %s

- name: Find which would change, changing nothing
  bitten_files:
    files: "{{ rendered }}"
  check_mode: true
  changed_when: false
  register: would
"""

RETURN = r"""
created_directories:
  description: the directories created (or that would be, in check mode)
  type: list
  elements: str
  returned: always
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


#: the keys a file's dict may have
FILE_KEYS = {"content", "owner", "group", "mode", "validate"}


def _spec(module: AnsibleModule, path: str, value: Any) -> dict[str, Any]:
    """One file's content, owner, group, mode and validation command, checked; fail_json naming the path."""
    task = {"owner": module.params["owner"], "group": module.params["group"], "mode": module.params["mode"],
            "validate": None}
    if isinstance(value, str):
        return {**task, "content": value}
    if not isinstance(value, dict):
        module.fail_json(msg=f"{path}: the value is a {type(value).__name__}, neither text nor a dict with content; "
                             "nothing was written")
    unknown = sorted(set(value) - FILE_KEYS)
    if unknown:
        module.fail_json(msg=f"{path}: unknown keys {', '.join(unknown)} (known: {', '.join(sorted(FILE_KEYS))}); "
                             "nothing was written")
    if not isinstance(value.get("content"), str):
        module.fail_json(msg=f"{path}: content is missing or not text; nothing was written")
    spec = {**task, **{key: val for key, val in value.items() if val is not None}}
    for key in ("owner", "group", "mode"):
        spec[key] = str(spec[key])
    if spec["validate"] is not None and "%s" not in str(spec["validate"]):
        module.fail_json(msg=f"{path}: validate must name the new file as %s, e.g. '/usr/sbin/visudo -cf %s'; "
                             "nothing was written")
    return spec


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "files": {"type": "dict", "required": True},
            "directories": {"type": "list", "elements": "str", "default": []},
            "owner": {"type": "str", "default": "root"},
            "group": {"type": "str", "default": "root"},
            "mode": {"type": "str", "default": "0644"},
        },
        supports_check_mode=True,
    )
    directories: list[str] = [os.path.normpath(d) for d in module.params["directories"]]
    for directory in directories:
        if not os.path.isabs(directory):
            module.fail_json(msg=f"{directory}: not an absolute directory path; nothing was written")
        if os.path.exists(directory) and not os.path.isdir(directory):
            module.fail_json(msg=f"{directory}: exists and is not a directory; nothing was written")
    specs: dict[str, dict[str, Any]] = {}
    for path, value in module.params["files"].items():
        if not os.path.isabs(path):
            module.fail_json(msg=f"{path}: not an absolute path; nothing was written")
        specs[path] = _spec(module, path, value)
        parent = os.path.dirname(path)
        # in check mode an earlier task that would create the directory did not run: the file would be new
        if not module.check_mode and not os.path.isdir(parent) and parent not in directories:
            module.fail_json(msg=f"{path}: directory {parent} does not exist and is not among the directories to "
                                 "create; nothing was written")
    # every new content that names a validation is validated before any directory or file is written: a rejected
    # file leaves all of them as they were (check mode validates nothing, as ansible.builtin.copy)
    if not module.check_mode:
        for path, spec in specs.items():
            if spec["validate"] is not None and _read(module, path) != spec["content"].encode():
                validate_content(module, path, spec["content"].encode(), spec["validate"])
    created: list[str] = []
    for directory in directories:
        if not os.path.isdir(directory):
            created.append(directory)
            if not module.check_mode:
                try:
                    os.makedirs(directory, mode=0o755, exist_ok=True)
                except OSError as exc:
                    module.fail_json(msg=f"{directory}: cannot create the directory: {exc}", created=created)
                file_args = module.load_file_common_arguments(
                    {"path": directory, "owner": "root", "group": "root", "mode": "0755"})
                module.set_fs_attributes_if_different(file_args, False)
    changed_files: list[str] = []
    content_changed: list[str] = []
    diffs: list[dict[str, str]] = []
    for path, spec in specs.items():
        wanted = spec["content"].encode()
        current = _read(module, path)
        differs = current != wanted
        if differs:
            content_changed.append(path)
            if module._diff:
                before = "" if current is None else (current.decode(errors="replace") if len(current) <= DIFF_MAX
                                                     else "(the old content is too large to show)\n")
                diffs.append({"before_header": path, "after_header": path, "before": before, "after": spec["content"]})
            if not module.check_mode:
                atomic_write(module, path, wanted)
        attrs = False
        if os.path.exists(path):
            file_args = module.load_file_common_arguments(
                {"path": path, "owner": spec["owner"], "group": spec["group"], "mode": spec["mode"]})
            attrs = module.set_fs_attributes_if_different(file_args, False)
        if differs or attrs:
            changed_files.append(path)
    result: dict[str, Any] = {"changed": bool(changed_files or created), "changed_files": changed_files,
                              "content_changed": content_changed, "created_directories": created}
    if diffs:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
