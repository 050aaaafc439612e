"""What bitten's modules share on the managed host: writing a file atomically (bitten_files, bitten_secret_file)."""

from __future__ import annotations

import os
import shlex
import tempfile

from ansible.module_utils.basic import AnsibleModule


def atomic_write(module: AnsibleModule, path: str, data: bytes, validate: str | None = None) -> None:
    """Write ``data`` to ``path`` through a 0600 temporary file in the same directory, synced, then renamed over it
    (AnsibleModule.atomic_move keeps an existing file's attributes); fail_json on any error, leaving nothing behind.
    ``validate`` is a command with ``%s`` for the temporary file (e.g. ``/usr/sbin/visudo -cf %s``), run without a
    shell before the rename: when it fails the file is not replaced. The caller sets owner, group and mode
    afterwards."""
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
        if validate is not None:
            argv = [word.replace("%s", tmp) for word in shlex.split(validate)]
            rc, out, err = module.run_command(argv)
            if rc != 0:
                os.unlink(tmp)
                module.fail_json(msg=f"{path}: the new content failed validation ({validate}), the file was not "
                                     f"replaced: {(err or out).strip()}", rc=rc)
        module.atomic_move(tmp, path)
    except Exception as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        module.fail_json(msg=f"{path}: could not write the file: {exc}")
