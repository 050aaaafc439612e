"""Bench: BIOS attributes + one-time boot to PXE + power on, applied to 256 emulated BMCs.

bitten.hardware's fleet (threads, concurrency 50) against the baseline measured in the same run: community.general's
redfish_config (SetBiosAttributes) and redfish_command (SetOneTimeBoot, PowerOn) through ansible-playbook with
forks=50. Both drive the same emulator: sushy-tools (with bitten's fake-driver extension) in its own process,
one BMC per port (each node's Systems collection lists its one system, as on a server's BMC), TLS verified
against a bench CA, basic auth. Each run starts from a fresh emulator state (every system off, factory BIOS).
After the baseline, bitten plans against the state it left: every node must be in the desired state, so both
did the same work. Prints both times, the ratio, and one node alone through bitten (the lower bound).

BITTEN_BENCH_NODES overrides the node count (default 256).
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bitten.core.pki import CertificateAuthority
from bitten.core.redfish.connection import Tls
from bitten.hardware import Credentials, Desired, Endpoint, run_fleet, run_node
from bitten.hardware.fleet import Settings, Target
from bitten.lab.doubles.bmc_emulator import SystemSpec, write_htpasswd
from bitten.site.model import Boot

NODES = int(os.environ.get("BITTEN_BENCH_NODES", "256"))
FORKS = 50
USER, PASSWORD = "bench", "bench-password-3f9a"  # a throwaway account of the bench's own emulator
BIOS = {"ProcSMT": "Disabled", "WorkloadProfile": "HighPerformanceCompute"}


def systems(count: int, prefix: str = "node") -> list[SystemSpec]:
    return [SystemSpec(f"{prefix}{i:03d}", macs=(f"02:be:00:00:{i // 256:02x}:{i % 256:02x}",))
            for i in range(count)]


class Emulator:
    """The emulator in a process of its own (so that it does not share a GIL with the client under test)."""

    def __init__(self, work: Path, specs: list[SystemSpec], cert: tuple[Path, Path], htpasswd: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(dir=work))
        self.specs = specs
        ports_file = self.dir / "ports.json"
        config = {"host": "127.0.0.1", "port": 0, "state_dir": str(self.dir / "state"), "cert": str(cert[0]),
                  "key": str(cert[1]), "auth_file": str(htpasswd), "power_delay": 0.0, "port_per_system": True,
                  "ports_file": str(ports_file), "systems": [s.as_dict() for s in specs]}
        (self.dir / "emulator.json").write_text(json.dumps(config))
        log = (self.dir / "emulator.log").open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "bitten.lab.doubles.bmc_emulator", "--config",
                                      str(self.dir / "emulator.json")], stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 120
        while not ports_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the emulator did not start; see {self.dir / 'emulator.log'}")
            time.sleep(0.1)
        self.ports: dict[str, int] = json.loads(ports_file.read_text())

    def url(self, name: str) -> str:
        return f"https://127.0.0.1:{self.ports[name]}"

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(30)


def targets(emu: Emulator) -> list[Target]:
    """Each node as a site would describe it: BMC, desired state, and the boot MAC bitten checks first."""
    return [Target(Endpoint(s.name, emu.url(s.name), s.name, "generic"),
                   Desired(bios=BIOS, boot=Boot(target="Pxe"), power="On", boot_mac=s.macs[0]),
                   Credentials(USER, PASSWORD)) for s in emu.specs]


def run_baseline(emu: Emulator, work: Path, ca: Path) -> float:
    inventory = {"all": {"hosts": {s.name: {"baseuri": f"127.0.0.1:{emu.ports[s.name]}", "system_uuid": s.uuid}
                                   for s in emu.specs}}}
    common = {"baseuri": "{{ baseuri }}", "resource_id": "{{ system_uuid }}", "username": USER,
              "password": PASSWORD, "validate_certs": True, "ca_path": str(ca), "timeout": 60}
    play = [{"name": "community.general Redfish baseline", "hosts": "all", "gather_facts": False,
             "connection": "local", "vars": {"ansible_python_interpreter": sys.executable},
             "tasks": [
                 {"name": "BIOS attributes", "community.general.redfish_config": {
                     **common, "category": "Systems", "command": "SetBiosAttributes", "bios_attributes": BIOS}},
                 {"name": "One-time boot to PXE", "community.general.redfish_command": {
                     **common, "category": "Systems", "command": "SetOneTimeBoot", "bootdevice": "Pxe"}},
                 {"name": "Power on", "community.general.redfish_command": {
                     **common, "category": "Systems", "command": "PowerOn"}},
             ]}]
    (work / "baseline-inventory.yml").write_text(yaml.safe_dump(inventory))
    (work / "baseline.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    (work / "ansible.cfg").write_text(f"[defaults]\nforks = {FORKS}\nhost_key_checking = false\n"
                                      "retry_files_enabled = false\n")
    env = {**os.environ, "ANSIBLE_CONFIG": str(work / "ansible.cfg")}
    bindir = Path(sys.executable).parent
    start = time.monotonic()
    proc = subprocess.run([str(bindir / "ansible-playbook"), "-i", str(work / "baseline-inventory.yml"),
                           str(work / "baseline.yml")], capture_output=True, text=True, env=env, cwd=work)
    seconds = time.monotonic() - start
    failed = re.findall(r"^(\S+)\s+:.*failed=([1-9]\d*)", proc.stdout, re.M)
    if proc.returncode != 0 or failed:
        fatal = [line for line in proc.stdout.splitlines() if line.startswith(("fatal:", "failed:"))]
        sys.stdout.write("\n".join(fatal[:10]) + "\n" + proc.stderr[-2000:])
        raise SystemExit(f"baseline failed (exit {proc.returncode}) on {len(failed)} host(s)")
    return seconds


def main() -> int:
    # retries show in the figures below, not as one warning each; sushy reports every generic BMC's failed
    # session login before it falls back to basic auth (the emulator has no SessionService)
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("sushy").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="bitten-bench-") as tmp:
        work = Path(tmp)
        ca = CertificateAuthority(work / "ca", name="bitten bench CA").ensure()
        pair = ca.issue("bmc", ["127.0.0.1"])
        htpasswd = work / "htpasswd"
        write_htpasswd(htpasswd, USER, PASSWORD, rounds=4)
        settings = Settings(tls=Tls(ca_file=str(ca.cert_path)))
        cert = (pair.cert, pair.key)
        print(f"{NODES} emulated BMCs (sushy-tools, one per port, TLS + basic auth); "
              f"BIOS {', '.join(BIOS)} + one-time boot Pxe + power on")

        emu = Emulator(work, systems(NODES), cert, htpasswd)
        try:
            baseline = run_baseline(emu, work, ca.cert_path)
            check = run_fleet(targets(emu), "plan", settings=settings, concurrency=FORKS)
            unconverged = [r.host for r in check.results if not r.ok or (r.plan and r.plan.changed)]
            if unconverged:
                raise SystemExit(f"the baseline left {len(unconverged)} node(s) off the desired state")
        finally:
            emu.stop()

        emu = Emulator(work, systems(NODES), cert, htpasswd)
        try:
            start = time.monotonic()
            fleet = run_fleet(targets(emu), "apply", settings=settings, concurrency=FORKS)
            bitten = time.monotonic() - start
            if not fleet.ok or len(fleet.changed) != NODES:
                raise SystemExit(f"bitten failed on {len(fleet.failed)} node(s): {fleet.failed[0].error}")
            requests = sum(r.requests for r in fleet.results)
            retries = sum(r.retries for r in fleet.results)
        finally:
            emu.stop()

        singles: list[float] = []
        emu = Emulator(work, systems(3, "single"), cert, htpasswd)
        try:
            for target in targets(emu):
                start = time.monotonic()
                result = run_node(target, "apply", settings=settings)
                singles.append(time.monotonic() - start)
                if not result.ok:
                    raise SystemExit(result.error)
        finally:
            emu.stop()

    one = min(singles)
    print(f"baseline  community.general redfish_config/redfish_command, ansible-playbook forks={FORKS}: "
          f"{baseline:7.1f} s")
    print(f"bitten    bitten.hardware fleet, concurrency {FORKS}: {bitten:7.1f} s "
          f"({requests} requests, {requests / NODES:.0f} per node: boot-MAC check, plan, writes, verification; "
          f"{retries} retried)")
    print(f"ratio     baseline / bitten: {baseline / bitten:.1f}x")
    print(f"one node  bitten.hardware alone (lower bound for any fleet run): {one:.2f} s "
          f"(fleet: {bitten / one:.0f}x the single-node time for {NODES} nodes)")
    return 0




if __name__ == "__main__":
    sys.exit(main())
