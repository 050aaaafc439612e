"""The scenario's BMCs: bitten's sushy-tools Redfish emulator on loopback, with TLS from a test CA and an account.

``python bmc.py start DIR PORT HOST...`` writes a test CA and a certificate for 127.0.0.1 (DIR/tls/), DIR/username and
DIR/password (0600), an htpasswd file and the emulator's config (one powered-off system per HOST), starts the
emulator in its own session and waits until it answers; ``python bmc.py stop DIR`` stops it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from bitten.core.pki import server_tls
from bitten.lab.doubles.bmc_emulator import SystemSpec, write_htpasswd

#: boot MACs the inventory (molecule.yml) gives the nodes
MACS = {"hw-gpu01": "02:1a:b0:00:01:21", "hw-cpu01": "02:1a:b0:00:01:31", "hw-spare01": "02:1a:b0:00:01:41"}


def start(directory: Path, port: int, hosts: list[str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    tls = server_tls(directory / "tls", ["127.0.0.1"])
    for name, value in (("username", "molecule"), ("password", secrets.token_urlsafe(24))):
        path = directory / name
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(value)
    write_htpasswd(directory / "htpasswd", (directory / "username").read_text(),
                   (directory / "password").read_text(), rounds=6)
    config = {"host": "127.0.0.1", "port": port, "state_dir": str(directory / "state"), "cert": str(tls.cert),
              "key": str(tls.key), "auth_file": str(directory / "htpasswd"), "power_delay": 0.0,
              "systems": [SystemSpec(name=h, macs=(MACS[h],)).as_dict() for h in hosts]}
    (directory / "emulator.json").write_text(json.dumps(config, indent=1))
    log = (directory / "emulator.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "bitten.lab.doubles.bmc_emulator", "--config",
                             str(directory / "emulator.json")], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    (directory / "emulator.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the emulator exited with {proc.returncode}; see {directory / 'emulator.log'}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the emulator did not answer on 127.0.0.1:{port} within 60 s")


def stop(directory: Path) -> None:
    pidfile = directory / "emulator.pid"
    if not pidfile.exists():
        return
    pid = int(pidfile.read_text())
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(pid, signal.SIGTERM)
    pidfile.unlink()


if __name__ == "__main__":
    if sys.argv[1] == "start":
        start(Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])
    else:
        stop(Path(sys.argv[2]))
