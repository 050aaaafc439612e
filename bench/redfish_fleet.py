"""Bench: BIOS attributes + one-time boot to PXE + power on, applied to 256 emulated BMCs.

Figures, each against a baseline measured in the same run:

* CPU per node: the fleet's CPU (this process, every thread) plus the emulator's (its own process, read from
  /proc), divided by the node count; and the same for the raw-GET loop per request.
* CPU per node against issue 16's baseline, reproduced in the same run against the same emulator process: per node
  15 requests (the count the issue measured: duplicate GETs and a failed session POST), each on a new TLS
  connection with basic auth, as the client made them then. Target: the fleet at <= 0.5x.
* Wall time of the fleet against the raw-GET loop: plain ``requests`` GETs of each node's System resource (one
  keep-alive connection and one Redfish session per node, TLS verified, the same concurrency), as many requests as
  the fleet made, against the same emulator process. That is the floor of what any client pays per request; the fleet
  (PATCHes and a POST among its requests, sushy, planning, verification) must not be slower.
* Wall time against community.general's redfish_config (SetBiosAttributes) and redfish_command (SetOneTimeBoot,
  PowerOn) through ansible-playbook with forks=50, on a fresh emulator (skipped with BITTEN_BENCH_ANSIBLE=0).
* One node alone through bitten (generic flavour on the emulator, and hpe_ilo on the iLO fake: sessions).
* A projection for 1,000 real iLOs from the measured round trips (on the iLO fake, by method) and client CPU (docs/
  bmc-fleet.md explains it).

The emulator is sushy-tools (with bitten's fake-driver extension and SessionService) in its own process, one BMC
per port (each node's Systems collection lists its one system, as on a server's BMC), TLS from a bench CA, a
Redfish session per node (basic auth for community.general, which does not log in). Each fleet
run starts from a fresh emulator state (every system off, factory BIOS); afterwards bitten plans against the state
it left: every node must be in the desired state.

BITTEN_BENCH_NODES overrides the node count (default 256), BITTEN_BENCH_RUNS the number of paired runs of fleet and
raw loop (default 3; medians are printed).
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

from _figures import figure
from bitten.core.pki import CertificateAuthority
from bitten.core.redfish.endpoint import Tls
from bitten.hardware import Credentials, DesiredBmcState, Endpoint, run_fleet, run_node
from bitten.hardware.fleet import FleetResult, Settings, Target
from bitten.lab.doubles.bmc_emulator import SystemSpec, write_htpasswd
from bitten.lab.doubles.ilo import IloFake, IloSpec
from bitten.lab.serve import WsgiServer
from bitten.site.model import Boot

NODES = int(os.environ.get("BITTEN_BENCH_NODES", "256"))
RUNS = int(os.environ.get("BITTEN_BENCH_RUNS", "3"))
ANSIBLE = os.environ.get("BITTEN_BENCH_ANSIBLE", "1") != "0"
FORKS = 50
USER, PASSWORD = "bench", "bench-password-3f9a"  # a throwaway account of the bench's own emulator
BIOS = {"ProcSMT": "Disabled", "WorkloadProfile": "HighPerformanceCompute"}
TICK = os.sysconf("SC_CLK_TCK")


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

    def cpu(self) -> float:
        """CPU seconds the emulator process has used so far (user + system, all threads)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(30)


def targets(emu: Emulator) -> list[Target]:
    """Each node as a site would describe it: BMC, desired state, and the boot MAC bitten checks first."""
    return [Target(Endpoint(s.name, emu.url(s.name), s.name, "generic"),
                   DesiredBmcState(bios=BIOS, boot=Boot(target="Pxe"), power="On", boot_mac=s.macs[0]),
                   Credentials(USER, PASSWORD)) for s in emu.specs]


@dataclass
class Measured:
    seconds: float
    client_cpu: float
    emulator_cpu: float
    requests: int

    @property
    def cpu(self) -> float:
        return self.client_cpu + self.emulator_cpu


def measure(emu: Emulator, work: Callable[[], int]) -> Measured:
    cpu0, emu0, start = time.process_time(), emu.cpu(), time.monotonic()
    count = work()
    return Measured(time.monotonic() - start, time.process_time() - cpu0, emu.cpu() - emu0, count)


def raw_get_loop(emu: Emulator, ca: Path, per_node: int) -> int:
    """Per node: a Redfish session login, GETs of its System resource, the logout (``per_node`` requests in all),
    over one keep-alive connection, FORKS nodes at a time: the same requests-level client the fleet has."""

    def node(spec: SystemSpec) -> int:
        base = emu.url(spec.name)
        with requests.Session() as session:
            session.trust_env = False
            root = session.get(f"{base}/redfish/v1/", verify=str(ca), timeout=30).json()
            login = None
            if "SessionService" in root:
                login = session.post(f"{base}/redfish/v1/SessionService/Sessions", verify=str(ca), timeout=30,
                                     json={"UserName": USER, "Password": PASSWORD})
                login.raise_for_status()
                session.headers["X-Auth-Token"] = login.headers["X-Auth-Token"]
            else:  # an emulator without sessions (the code before bitten's SessionService): basic auth
                session.auth = (USER, PASSWORD)
            url = f"{base}/redfish/v1/Systems/{spec.name}"
            for _ in range(per_node - (3 if login is not None else 1)):
                response = session.get(url, verify=str(ca), timeout=30)
                response.raise_for_status()
                response.json()
            if login is not None:
                session.delete(f"{base}{login.headers['Location']}", verify=str(ca), timeout=30).raise_for_status()
        return per_node

    with ThreadPoolExecutor(max_workers=FORKS) as pool:
        return sum(pool.map(node, emu.specs))


#: issue 16's "today": 15 requests per node, a new TLS connection for each, basic auth after the failed session POST
ISSUE_REQUESTS = 15


def issue_pattern(emu: Emulator, ca: Path) -> int:
    """Issue 16's baseline request pattern: per node ISSUE_REQUESTS GETs of its System resource, each on a connection
    of its own (TLS handshake, ``Connection: close``) with basic auth, FORKS nodes at a time."""

    def node(spec: SystemSpec) -> int:
        url = f"{emu.url(spec.name)}/redfish/v1/Systems/{spec.name}"
        for _ in range(ISSUE_REQUESTS):
            with requests.Session() as session:
                session.trust_env = False
                response = session.get(url, auth=(USER, PASSWORD), verify=str(ca), timeout=30,
                                       headers={"Connection": "close"})
                response.raise_for_status()
                response.json()
        return ISSUE_REQUESTS

    with ThreadPoolExecutor(max_workers=FORKS) as pool:
        return sum(pool.map(node, emu.specs))


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


def converged(emu: Emulator, settings: Settings) -> None:
    check = run_fleet(targets(emu), "plan", settings=settings, concurrency=FORKS)
    unconverged = [r.host for r in check.results if not r.ok or (r.plan and r.plan.changed)]
    if unconverged:
        raise SystemExit(f"{len(unconverged)} node(s) are not in the desired state after the run")


def paired_run(work: Path, cert: tuple[Path, Path], htpasswd: Path, ca: Path,
               settings: Settings) -> tuple[Measured, Measured, Measured]:
    """The fleet on a fresh emulator, then the raw-GET loop with as many requests and issue 16's request pattern
    against the same process."""
    emu = Emulator(work, systems(NODES), cert, htpasswd)
    try:
        # warm the emulator's code paths (templates, imports) outside the measurement, on a node of its own
        warm = emu.specs[0]
        emu.specs = emu.specs[1:]
        with requests.Session() as session:
            session.trust_env = False
            for _ in range(20):
                session.get(f"{emu.url(warm.name)}/redfish/v1/Systems/{warm.name}", auth=(USER, PASSWORD),
                            verify=str(ca), timeout=30).json()
        result: list[FleetResult] = []

        def fleet() -> int:
            result.append(run_fleet(targets(emu), "apply", settings=settings, concurrency=FORKS))
            return sum(r.requests for r in result[0].results)

        bitten = measure(emu, fleet)
        fleet_result = result[0]
        if not fleet_result.ok or len(fleet_result.changed) != len(emu.specs):
            raise SystemExit(f"bitten failed on {len(fleet_result.failed)} node(s): {fleet_result.failed[0].error}")
        converged(emu, settings)
        per_node = round(bitten.requests / len(emu.specs))
        raw = measure(emu, lambda: raw_get_loop(emu, ca, per_node))
        old = measure(emu, lambda: issue_pattern(emu, ca))
    finally:
        emu.stop()
    return bitten, raw, old


def one_node(work: Path, cert: tuple[Path, Path], htpasswd: Path, settings: Settings) -> tuple[float, int]:
    singles: list[tuple[float, int]] = []
    emu = Emulator(work, systems(3, "single"), cert, htpasswd)
    try:
        for target in targets(emu):
            start = time.monotonic()
            result = run_node(target, "apply", settings=settings)
            singles.append((time.monotonic() - start, result.requests))
            if not result.ok:
                raise SystemExit(result.error)
    finally:
        emu.stop()
    return min(singles)


def one_ilo(cert: tuple[Path, Path], settings: Settings) -> tuple[float, int, float, dict[str, int]]:
    """One node through the iLO fake (sessions, Oem.Hpe, the settings object): time, requests, client CPU and the
    requests by method."""
    runs: list[tuple[float, int, float, dict[str, int]]] = []
    for i in range(3):
        fake = IloFake(IloSpec(username=USER, password=PASSWORD, macs=("94:40:c9:68:50:01",)))
        with WsgiServer(fake, cert=cert) as server:
            target = Target(Endpoint(f"ilo{i}", server.url, "1", "hpe_ilo"),
                            DesiredBmcState(bios=BIOS, boot=Boot(target="Pxe"), power="On",
                                            boot_mac="94:40:c9:68:50:01"),
                            Credentials(USER, PASSWORD))
            cpu0, start = thread_cpu(), time.monotonic()
            result = run_node(target, "apply", settings=settings)
            elapsed, cpu = time.monotonic() - start, thread_cpu() - cpu0
            methods: dict[str, int] = {}
            for (method, _path), count in fake.calls.items():
                methods[method] = methods.get(method, 0) + count
            runs.append((elapsed, result.requests, cpu, methods))
            if not result.ok:
                raise SystemExit(result.error)
            if fake.sessions:
                raise SystemExit("the iLO session was not deleted")
    return min(runs, key=lambda r: r[0])


def thread_cpu() -> float:
    return time.thread_time()


def main() -> int:
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
        print(f"{NODES} emulated BMCs (sushy-tools, one per port, TLS, Redfish sessions); "
              f"BIOS {', '.join(BIOS)} + one-time boot Pxe + power on; concurrency {FORKS}; {RUNS} paired run(s)")

        baseline = None
        if ANSIBLE:
            emu = Emulator(work, systems(NODES), cert, htpasswd)
            try:
                baseline = run_baseline(emu, work, ca.cert_path)
                converged(emu, settings)
            finally:
                emu.stop()

        pairs = [paired_run(work, cert, htpasswd, ca.cert_path, settings) for _ in range(RUNS)]
        single, single_requests = one_node(work, cert, htpasswd, settings)
        ilo_seconds, ilo_requests, ilo_cpu, ilo_methods = one_ilo(cert, settings)

    nodes = NODES - 1  # one node of each emulator warms it up outside the measurement
    med = statistics.median
    fleet_s = med(b.seconds for b, _, _ in pairs)
    raw_s = med(r.seconds for _, r, _ in pairs)
    requests_total = int(med(b.requests for b, _, _ in pairs))
    per_node = requests_total / nodes
    fleet_cpu = med(b.cpu for b, _, _ in pairs) / nodes
    client_cpu = med(b.client_cpu for b, _, _ in pairs) / nodes
    emu_cpu = med(b.emulator_cpu for b, _, _ in pairs) / nodes
    raw_cpu = med(r.cpu / r.requests for _, r, _ in pairs)
    print(f"fleet     bitten.hardware apply, {nodes} nodes: {fleet_s:6.2f} s wall, {requests_total} requests "
          f"({per_node:.1f} per node)")
    print(f"          CPU per node {fleet_cpu * 1000:6.1f} ms (client {client_cpu * 1000:.1f} + emulator "
          f"{emu_cpu * 1000:.1f}); runs: " + ", ".join(f"{b.seconds:.2f} s/{b.cpu / nodes * 1000:.1f} ms"
                                                         for b, _, _ in pairs))
    raw_client = med(r.client_cpu / r.requests for _, r, _ in pairs)
    print(f"raw GETs  requests.Session per node, {requests_total // nodes} requests each: {raw_s:6.2f} s wall, "
          f"CPU {raw_cpu * 1000:.2f} ms per request (client {raw_client * 1000:.2f}; fleet "
          f"{fleet_cpu / per_node * 1000:.2f}, client {client_cpu / per_node * 1000:.2f})")
    old_cpu = med(o.cpu for _, _, o in pairs) / nodes
    old_client = med(o.client_cpu for _, _, o in pairs) / nodes
    old_s = med(o.seconds for _, _, o in pairs)
    cpu_ratios = [b.cpu / o.cpu for b, _, o in pairs]
    print(f"issue 16  its baseline pattern, {ISSUE_REQUESTS} requests per node, a new TLS connection and basic auth "
          f"each: {old_s:6.2f} s wall, CPU per node {old_cpu * 1000:.1f} ms (client {old_client * 1000:.1f} + "
          f"emulator {(old_cpu - old_client) * 1000:.1f}; {old_cpu / ISSUE_REQUESTS * 1000:.2f} ms per request)")
    print(f"ratio     fleet CPU per node / issue 16's pattern: {med(cpu_ratios):.2f}x median of "
          + ", ".join(f"{x:.2f}" for x in cpu_ratios) + " (target <= 0.5)")
    ratios = [b.seconds / r.seconds for b, r, _ in pairs]
    print(f"ratio     fleet / raw-GET loop (wall, same requests, same emulator): {med(ratios):.2f}x median of "
          + ", ".join(f"{x:.2f}" for x in ratios) + " (target <= 1.0)")
    if baseline is not None:
        print(f"baseline  community.general redfish_config/redfish_command, ansible-playbook forks={FORKS}: "
              f"{baseline:6.1f} s; baseline / fleet {baseline / fleet_s:.1f}x")
    print(f"one node  generic on the emulator {single:.3f} s ({single_requests} requests); hpe_ilo on the iLO fake "
          f"{ilo_seconds:.3f} s ({ilo_requests} requests, client CPU {ilo_cpu * 1000:.1f} ms) (target <= 0.12 s)")
    project(ilo_requests, ilo_methods, client_cpu, ilo_cpu)
    figure("BMC fleet CPU per node / issue 16's request pattern", f"{med(cpu_ratios):.2f}x ({fleet_cpu * 1000:.1f} "
           f"/ {old_cpu * 1000:.1f} ms)", "<= 0.5x", med(cpu_ratios) <= 0.5)
    figure("BMC fleet wall / raw-GET loop (same requests, same emulator)", f"{med(ratios):.2f}x", "<= 1.0x",
           med(ratios) <= 1.0)
    figure("one node, generic flavour on the emulator", f"{single:.3f} s", "<= 0.12 s", single <= 0.12)
    figure("one node, hpe_ilo flavour on the iLO fake", f"{ilo_seconds:.3f} s", "<= 0.12 s", ilo_seconds <= 0.12)
    return 0


#: what the projection assumes (no iLO can run on this machine): an iLO 5/6 answers a Redfish request in 0.1-0.5 s
#: (GETs of the system quickly, BIOS resources and the reset slowly); PowerState reads On a few seconds after the
#: Reset (the POST itself takes minutes and is not waited for). Everything else in it is measured in this run.
ILO_SECONDS_PER_REQUEST = (0.1, 0.5)
ILO_POWER_ON_SECONDS = 5.0
CONCURRENCY_1000 = 128
ILOS = 1000


def project(requests_per_node: int, methods: dict[str, int], fleet_client_cpu: float, ilo_client_cpu: float) -> None:
    """1,000 real iLOs: each node's requests are sequential round trips on one connection and one session;
    CONCURRENCY_1000 nodes at a time."""
    waves = -(-ILOS // CONCURRENCY_1000)
    low, high = (requests_per_node * t + ILO_POWER_ON_SECONDS for t in ILO_SECONDS_PER_REQUEST)
    cpu = max(fleet_client_cpu, ilo_client_cpu)
    client = ILOS * cpu
    by_method = ", ".join(f"{count} {method}" for method, count in sorted(methods.items()))
    print(f"{ILOS:,} iLOs (projected): {requests_per_node} round trips per node, measured on the iLO fake "
          f"({by_method}; "
          f"session login and logout included, one TLS connection); at {ILO_SECONDS_PER_REQUEST[0]:g}-"
          f"{ILO_SECONDS_PER_REQUEST[1]:g} s per iLO answer (assumed) + {ILO_POWER_ON_SECONDS:g} s to PowerState On: "
          f"{low:.0f}-{high:.0f} s per node")
    print(f"          {CONCURRENCY_1000} nodes at a time (threads waiting on iLOs, one connection and one session "
          f"each): {waves} waves, {waves * low / 60:.1f}-{waves * high / 60:.1f} min for the fleet; client CPU "
          f"{client:.0f} s in all (measured {cpu * 1000:.0f} ms per node: the larger of the fleet's "
          f"{fleet_client_cpu * 1000:.0f} ms and one iLO's {ilo_client_cpu * 1000:.0f} ms), "
          f"{client / (waves * high) * 100:.0f}-{client / (waves * low) * 100:.0f} % of one core: the iLOs, not the "
          "client, set the pace; more concurrency shortens the run until that share nears a core")
    print("          sessions: one per iLO at a time, deleted at the end, so iLO's session limit (HPE documents a "
          "finite number of connections and a 30 min default idle timeout, after which an abandoned session is "
          "recycled) is never approached; basic auth would open a session per request")


if __name__ == "__main__":
    sys.exit(main())
