"""Changes that need a reboot roll through a real Slurm cluster (podman containers) and emulated BMCs, one wave at
a time, never through a running job: each node drains, reboots (its BMC restarts the machine, the staged BIOS
settings and firmware apply), passes its gate (the BMC's state read back, a test job) and takes work again; a
node that fails stays drained with its reason and no further wave starts."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from bitten.core.pki import CertificateAuthority
from bitten.core.redfish.endpoint import Endpoint, Tls
from bitten.core.scontrol import Scontrol
from bitten.hardware.changes import Stager, reboot_needs
from bitten.hardware.fleet import Settings, Target, run_fleet
from bitten.hardware.plan import DesiredBmcState
from bitten.hardware.rollout import Rollout, RolloutResult
from bitten.lab.doubles.bmc_emulator import EmulatorServer, SystemSpec, write_htpasswd
from bitten.lab.image import Recipe
from bitten.lab.podman import image_exists
from bitten.site.model import Firmware, RolloutSettings

from .conftest import CREDS, FAST_RETRY, PASSWORD, USER
from .slurm_cluster import NODES, SlurmCluster

pytestmark = [pytest.mark.slow]
BIOS = {"ProcSMT": "Disabled", "WorkloadProfile": "HighPerformanceCompute"}


@dataclass
class Site:
    cluster: SlurmCluster
    emulator: EmulatorServer
    settings: Settings
    repository: str

    def target(self, node: str, bios: dict[str, str] | None = None,
               firmware: dict[str, Firmware] | None = None) -> Target:
        return Target(Endpoint(node, self.emulator.url_of(node), node, "generic"),
                      DesiredBmcState(bios=bios if bios is not None else BIOS, power="On", firmware=firmware or {},
                              firmware_repository=self.repository), CREDS)

    def rollout(self, wave_size: int = 1, **settings: object) -> Rollout:
        config = RolloutSettings(wave_size=wave_size, reboot_timeout_s=150, gate_timeout_s=60,
                                 scontrol=self.cluster.scontrol, srun=self.cluster.srun, **settings)
        return Rollout(Scontrol(config.scontrol, timeout=30), config, poll=0.5,
                       gate_commands=lambda _host: ["/bin/true"])

    def boots(self, node: str) -> int:
        return int(self.emulator.driver.boots(node))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if shutil.which("podman") is None or not image_exists(Recipe("trixie").stable_ref):
        pytest.skip("needs podman and the base image (make images)")
    root = tmp_path_factory.mktemp("rolling")
    # names and subnet of this process's own: two test runs on one machine do not meet
    cluster = SlurmCluster(prefix=f"bitten-rr{os.getpid()}", subnet=f"10.78.{100 + os.getpid() % 100}").start()
    ca = CertificateAuthority(root / "ca").ensure()
    pair = ca.issue("bmc", [cluster.gateway, "127.0.0.1"])
    htpasswd = root / "htpasswd"
    write_htpasswd(htpasswd, USER, PASSWORD, rounds=4)
    specs = [SystemSpec(n, macs=(f"02:1a:b0:00:01:{i:02x}",), power_state="On") for i, n in enumerate(NODES)]
    emulator = EmulatorServer(specs, root / "state", host=cluster.gateway, cert=(pair.cert, pair.key),
                              auth_file=htpasswd, port_per_system=True, flash_seconds=0.2).start()
    cluster.bmcs({n: {"url": emulator.url_of(n), "system": n, "user": USER, "password": PASSWORD}
                  for n in NODES}, ca.cert_path)
    www = root / "www"
    www.mkdir()
    (www / "bios-1.60.fwpkg").write_text(json.dumps({"Devices": {"Device": [{"DeviceName": "BIOS",
                                                                            "Version": "1.60"}]}}))

    class Files(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, directory=str(www), **kw)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    files = http.server.ThreadingHTTPServer((cluster.gateway, 0), Files)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    settings = Settings(tls=Tls(ca_file=str(ca.cert_path)), retry=FAST_RETRY)
    try:
        yield Site(cluster, emulator, settings, f"http://{cluster.gateway}:{files.server_port}/")
    finally:
        files.shutdown()
        emulator.stop()
        cluster.stop()


def _pending(site: Site, nodes: list[str], bios: dict[str, str] = BIOS) -> list[Target]:
    """Write the BIOS change to the running nodes' BMCs: it waits for their next reboot."""
    targets = [site.target(n, bios) for n in nodes]
    applied = run_fleet(targets, "apply", settings=site.settings)
    assert applied.ok, [r.error for r in applied.failed]
    assert all(r.pending == bios for r in applied.results), "running nodes: the values wait for a reboot"
    return targets


def _plan_needs(site: Site, targets: list[Target], firmware: bool = False) -> list:  # type: ignore[type-arg]
    plans = run_fleet(targets, "plan", settings=site.settings)
    assert plans.ok
    return reboot_needs(plans.results, targets, site.settings, firmware=firmware)


def test_a_rolling_bios_change_waves_past_a_running_job(site: Site) -> None:
    job = site.cluster.submit("n3", 900)
    site.cluster.wait_running(job)
    targets = _pending(site, ["n1", "n2"])
    needs = _plan_needs(site, targets)
    assert [(n.host, n.why) for n in needs] == [("n1", "BIOS ProcSMT, WorkloadProfile pending"),
                                                ("n2", "BIOS ProcSMT, WorkloadProfile pending")]
    boots = {n: site.boots(n) for n in NODES}
    events: list[tuple[float, str]] = []
    rollout = site.rollout(wave_size=1)
    rollout._progress = lambda text: events.append((time.time(), text))

    result = rollout.run(needs)

    assert result.ok, result.as_dict()
    assert [(n.host, n.wave, n.state) for n in result.nodes] == [("n1", 1, "done"), ("n2", 2, "done")]
    assert {n: site.boots(n) - boots[n] for n in NODES} == {"n1": 1, "n2": 1, "n3": 0}
    # one wave at a time: n2 restarted only after n1 had passed its gate and wave 2 began
    wave2 = next(t for t, text in events if text.startswith("wave 2/2"))
    n1_boot, n2_boot = site.emulator.driver.last_boot("n1"), site.emulator.driver.last_boot("n2")
    assert n1_boot < wave2 < n2_boot
    # the reboot did what it was for: the values are current, nothing pending
    after = run_fleet(targets, "plan", settings=site.settings)
    assert all(r.ok and not r.reboot and not r.plan.changed for r in after.results)
    # the job on n3 was never touched; n1 and n2 take work again; no reservation is left behind
    assert site.cluster.job_state(job) == "RUNNING"
    site.cluster.wait_idle(["n1", "n2"], timeout=30)
    assert "No reservations" in site.cluster.exec("ctl", "scontrol", "show", "reservation", check=False)
    site.cluster.exec("ctl", "scancel", job)


def test_a_busy_node_reboots_only_after_its_job_ended(site: Site) -> None:
    job = site.cluster.submit("n1", 40)
    site.cluster.wait_running(job)
    targets = _pending(site, ["n1"], {"ProcSMT": "Enabled"})
    needs = _plan_needs(site, targets)
    seen: list[str] = []
    watching = threading.Event()

    def watch() -> None:
        while not watching.is_set():
            seen.append(site.cluster.node_line("n1"))
            time.sleep(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result: RolloutResult = site.rollout().run(needs)
    finally:
        watching.set()
        watcher.join()
    assert result.ok, result.as_dict()
    assert site.cluster.job_state(job) == "COMPLETED", "the job ran to its end; it was not killed or requeued"
    end = site.cluster.exec("ctl", "scontrol", "show", "job", "-o", job).split("EndTime=")[1].split()[0]
    end_epoch = time.mktime(time.strptime(end, "%Y-%m-%dT%H:%M:%S"))
    boot = site.emulator.driver.last_boot("n1")
    assert boot is not None and boot >= end_epoch - 1, "the machine restarted after the job had ended"
    busy_and_draining = [line for line in seen if "State=MIXED+DRAIN" in line or "State=ALLOCATED+DRAIN" in line]
    assert busy_and_draining and "REBOOT_REQUESTED" in busy_and_draining[0]
    assert "Reason=bitten: reboot: BIOS ProcSMT pending" in busy_and_draining[0]


def test_firmware_is_staged_then_activated_by_the_wave_reboot(site: Site) -> None:
    baseline = {"bios": Firmware(name="BIOS", version="1.60", image="bios-1.60.fwpkg")}
    target = site.target("n2", bios={}, firmware=baseline)
    needs = _plan_needs(site, [target], firmware=True)
    assert [(n.host, n.why) for n in needs] == [("n2", "firmware bios 1.60")]
    stager = Stager({"n2": target}, site.settings, firmware=True, timeout=60, poll=0.1)
    result = site.rollout().run(needs, prepare=stager)
    assert result.ok, result.as_dict()
    assert stager.done == {"n2": ["bios 1.60: staged"]}
    services = [s for s in site.emulator.update_services if s.requests]
    assert [r[0] for s in services for r in s.requests] == [f"{site.repository}bios-1.60.fwpkg"]
    assert site.emulator.driver.get_firmware("n2")["BIOS"] == "1.60"


def test_a_node_that_fails_its_gate_stays_drained_and_the_rollout_stops(site: Site) -> None:
    targets = _pending(site, ["n1", "n3"], {"ProcSMT": "Disabled"})
    needs = _plan_needs(site, targets)
    rollout = site.rollout(wave_size=1)
    rollout.gate_commands = lambda host: ["/bin/false"] if host == "n1" else ["/bin/true"]
    boots = site.boots("n3")
    result = rollout.run(needs)
    assert not result.ok
    assert [(n.host, n.state) for n in result.nodes] == [("n1", "failed"), ("n3", "skipped")]
    assert result.stopped and "remaining waves did not start" in result.stopped
    line = site.cluster.node_line("n1")
    assert "DRAIN" in line and "Reason=bitten: BIOS ProcSMT pending: test job failed" in line
    assert site.boots("n3") == boots, "no further wave started"
    site.cluster.exec("ctl", "scontrol", "update", "NodeName=n1", "State=RESUME")
