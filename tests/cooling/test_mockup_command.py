"""`bitten cooling mockup` (``python -m bitten.lab mockup``) as a service manager runs it: it stops on SIGTERM within
a second, and a port that is taken is one line of error, not a traceback."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import requests


def _start(mockup_dir: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "bitten.lab", "mockup", str(mockup_dir), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_mockup_stops_on_sigterm_within_a_second(mockup_dir: Path) -> None:
    port = _free_port()
    proc = _start(mockup_dir, port)
    try:
        assert proc.stdout is not None
        assert "serving" in proc.stdout.readline()
        session = requests.Session()
        session.trust_env = False
        assert session.get(f"http://127.0.0.1:{port}/redfish/v1/", timeout=5).status_code == 200
        proc.send_signal(signal.SIGTERM)
        # today it hangs for good (shutdown() in the signal handler waits for the loop it runs in); now the
        # handler only sets an event the main thread waits on in 0.2 s steps (the bound here is a hang guard
        # for a loaded machine, not a timing figure)
        proc.wait(timeout=10)
        assert proc.returncode == 0
    finally:
        proc.kill()
        proc.wait()


def test_a_busy_port_is_one_line_of_error(mockup_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc = _start(mockup_dir, int(taken.getsockname()[1]))
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "is in use by another program" in lines[0], err
    assert "Traceback" not in err
