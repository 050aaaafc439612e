"""What bitten's modules share on the managed host: writing a file atomically (bitten_files, bitten_secret_file)."""

from __future__ import annotations

import os
import shlex
import tempfile

from ansible.module_utils.basic import AnsibleModule


def validate_content(module: AnsibleModule, path: str, data: bytes, validate: str) -> None:
    """Run ``validate`` (a command with ``%s``, e.g. ``/usr/sbin/visudo -cf %s``; no shell) on ``data`` in a
    temporary file of the module's own temporary directory; fail_json naming ``path`` when it fails. A module that
    writes several files validates every one first, so that a rejected file leaves all of them as they were."""
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.bitten-", dir=module.tmpdir)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        argv = [word.replace("%s", tmp) for word in shlex.split(validate)]
        rc, out, err = module.run_command(argv)
    finally:
        os.unlink(tmp)
    if rc != 0:
        module.fail_json(msg=f"{path}: the new content failed validation ({validate}), the file was not replaced "
                             f"and nothing was written: {(err or out).strip()}", rc=rc)


def atomic_write(module: AnsibleModule, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a 0600 temporary file in the same directory, synced, then renamed over it
    (AnsibleModule.atomic_move keeps an existing file's attributes); fail_json on any error, leaving nothing behind.
    The caller sets owner, group and mode afterwards."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        module.fail_json(msg=f"{path}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.bitten-", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        module.atomic_move(tmp, path)
    except Exception as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        module.fail_json(msg=f"{path}: could not write the file: {exc}")
