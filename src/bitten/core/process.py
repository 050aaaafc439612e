"""Running a command with a hard time limit that also holds when the command hangs in the kernel.

``subprocess.run(timeout=...)`` kills the child and then waits for it and for its pipes without a limit, so a
process stuck in uninterruptible sleep (a GPU that stopped answering) or a grandchild that keeps the pipe open
would hang the caller anyway. Here the child gets its own process group, the whole group is killed on timeout,
and after a short grace period the caller stops waiting and leaves the process behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: how long to wait for a killed command before leaving it behind
GRACE_SECONDS = 2.0


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int | None
    stdout: str
    stderr: str
    #: the command did not finish within its time limit (returncode is None)
    timed_out: bool = False
    #: the command could not be started (not found, not executable); the reason is in stderr
    missing: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run(argv: Sequence[str], timeout: float, env: Mapping[str, str] | None = None,
        stdin: str | None = None) -> Result:
    """Run ``argv`` (``stdin``: text for its standard input, else none); return within about ``timeout`` +
    GRACE_SECONDS whatever the command does."""
    start = time.monotonic()
    try:
        proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                                text=True, errors="replace", start_new_session=True,
                                env=dict(env) if env is not None else None)
    except OSError as exc:
        return Result(tuple(argv), None, "", f"{argv[0]}: {exc.strerror or exc}", missing=True)
    try:
        out, err = proc.communicate(input=stdin, timeout=timeout)
        return Result(tuple(argv), proc.returncode, out, err, seconds=time.monotonic() - start)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        out = err = ""
        try:
            out, err = proc.communicate(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            # still stuck (D state) or a grandchild holds the pipes: stop waiting and leave it behind
            for stream in (proc.stdout, proc.stderr):
                with contextlib.suppress(OSError):
                    if stream is not None:
                        stream.close()
        return Result(tuple(argv), None, out or "", err or "", timed_out=True, seconds=time.monotonic() - start)
