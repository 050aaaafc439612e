"""The Slurm prolog and epilog for container jobs (enroot + pyxis): each user's own enroot directories, created
before the job; this job's containers removed after it, and nothing else.

Prolog: ``<runtime|data|cache path>/user-<uid>`` are made as root, owned by the job's user, mode 0700, under parents
only root can write (a world-writable parent would let one user create another's directory first).

Pyxis names the containers of a job ``pyxis_<job id>.<step id>`` (unnamed) and ``pyxis_<job id>_<name>`` (named,
with ``container_scope=job``), under enroot's data path, which bitten makes per user (``<data>/user-<uid>``). It
removes them itself when a step ends cleanly; this epilog is the safety net for steps that did not. Peers' epilogs
clean with a wildcard over the whole data directory (``rm -rf $ENROOT_DATA_PATH/*``), which deletes the containers
of the same user's other jobs still running on the node, and named containers kept on purpose. Here only entries
whose names carry this job's id are removed, in this job's user's own directory, never following a symlink.

Both run as root from slurmd (Prolog=, Epilog=) with SLURM_JOB_ID and SLURM_JOB_UID set. Standard library only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

CONFIG_FILE = "/etc/bitten/containers.json"
_NUMBER = re.compile(r"^[0-9]+$")


def job_containers(data_path: str | Path, uid: int, job_id: int) -> list[Path]:
    """This job's container directories in its user's enroot data directory (no symlinks, nothing else)."""
    user_dir = Path(data_path) / f"user-{uid}"
    try:
        info = user_dir.lstat()
    except FileNotFoundError:
        return []
    # the user's own directory, a real one: a symlink here could point the deletion anywhere
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid:
        raise PermissionError(f"{user_dir} is not a directory owned by uid {uid}: not touching it")
    prefixes = (f"pyxis_{job_id}.", f"pyxis_{job_id}_")
    found = []
    for entry in sorted(user_dir.iterdir()):
        if entry.name.startswith(prefixes) and entry.is_dir() and not entry.is_symlink():
            found.append(entry)
    return found


def clean(data_path: str | Path, uid: int, job_id: int) -> list[Path]:
    """Remove this job's containers; returns what was removed. rmtree does not follow symlinks inside them."""
    removed = []
    for entry in job_containers(data_path, uid, job_id):
        shutil.rmtree(entry)
        removed.append(entry)
    return removed


def prepare(paths: Sequence[str | Path], uid: int, gid: int) -> list[Path]:
    """Make ``<path>/user-<uid>`` (0700, the user's) under each path; parents root's, 0755. Returns the made ones."""
    made = []
    for base in map(Path, paths):
        base.mkdir(mode=0o755, parents=True, exist_ok=True)
        info = base.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
            raise PermissionError(f"{base} must be a directory only root can write to")
        user_dir = base / f"user-{uid}"
        try:
            os.mkdir(user_dir, 0o700)
            os.chown(user_dir, uid, gid)
            made.append(user_dir)
        except FileExistsError:
            pass
        info = user_dir.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid:
            raise PermissionError(f"{user_dir} exists but is not a directory owned by uid {uid}")
    return made


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """``epilog [CONFIG]`` or ``prolog [CONFIG]``. Exit 0 when done or nothing to do; 1 on failure (slurmd then
    drains the node with "Prolog error"/"Epilog error", and requeues a job whose prolog failed)."""
    env = os.environ if env is None else env
    args = list(sys.argv[1:] if argv is None else argv)
    mode = args.pop(0) if args and args[0] in ("prolog", "epilog") else "epilog"
    config_file = args[0] if args else CONFIG_FILE
    name = f"bitten-container-{mode}"
    job, uid = env.get("SLURM_JOB_ID", ""), env.get("SLURM_JOB_UID", "")
    if not _NUMBER.match(job) or not _NUMBER.match(uid):
        # unknown job or user: touch nothing
        print(f"{name}: SLURM_JOB_ID={job!r} SLURM_JOB_UID={uid!r}: nothing done", file=sys.stderr)
        return 0
    try:
        config = json.loads(Path(config_file).read_text(encoding="utf-8"))
        if mode == "prolog":
            gid = env.get("SLURM_JOB_GID", "")
            group = int(gid) if _NUMBER.match(gid) else _primary_gid(int(uid))
            done = prepare([config["runtime_path"], config["data_path"], config["cache_path"]], int(uid), group)
        else:
            done = clean(str(config["data_path"]), int(uid), int(job))
    except (OSError, ValueError, KeyError) as exc:
        print(f"{name}: job {job}: {exc}", file=sys.stderr)
        return 1
    for entry in done:
        print(f"{name}: job {job}: {'made' if mode == 'prolog' else 'removed'} {entry}", file=sys.stderr)
    return 0


def _primary_gid(uid: int) -> int:
    import pwd

    return pwd.getpwuid(uid).pw_gid
