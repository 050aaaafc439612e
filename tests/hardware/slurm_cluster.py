"""A small real Slurm cluster in podman containers for the rolling-reboot tests: slurmctld and three slurmd nodes
(Debian 13, Slurm 24.11, munge), no accounting, whose reboots go through their emulated BMCs.

Each node's RebootProgram is a TEST DOUBLE of a node rebooting: it asks the node's BMC (the sushy-tools emulator
on the network's gateway, one port per node) for a ForceRestart — so BIOS settings and firmware staged there
apply, as they do when a real machine restarts — and then restarts slurmd with ``-b`` ("report the node as
rebooted"), which is what Slurm sees of a node coming back from a reboot. Containers cannot reboot; Slurm, munge,
the drain, the reservation, the test jobs and the BMC are the real ones.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bitten.lab.image import Derived, ensure_derived
from bitten.lab.podman import PodmanError, podman

IMAGE = Derived("slurm-test", "trixie", ("slurmctld", "slurmd", "slurm-client", "munge"))
NODES = ("n1", "n2", "n3")

SLURM_CONF = """\
ClusterName=reboottest
SlurmctldHost=ctl({ctl_ip})
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
RebootProgram=/usr/local/sbin/bitten-test-reboot
ResumeTimeout=120
SlurmdTimeout=60
SchedulerParameters=defer_batch
{nodes}
PartitionName=debug Nodes={node_list} Default=YES MaxTime=INFINITE State=UP
"""

REBOOT = r"""#!/bin/sh
# TEST DOUBLE: a node rebooting (see tests/hardware/slurm_cluster.py). Slurm runs this as root from slurmd.
python3 /usr/local/sbin/bitten-test-bmc-reset
setsid sh -c 'sleep 1; pkill -x slurmd; sleep 1; /usr/sbin/slurmd -b' >/dev/null 2>&1 < /dev/null &
"""

BMC_RESET = r"""#!/usr/bin/env python3
# TEST DOUBLE: the machine's restart, through the node's emulated BMC (ForceRestart applies what is staged there)
import base64, json, ssl, urllib.request
cfg = json.load(open("/etc/bitten-test/bmc.json"))
context = ssl.create_default_context(cafile="/etc/bitten-test/ca.pem")
request = urllib.request.Request(
    cfg["url"] + "/redfish/v1/Systems/" + cfg["system"] + "/Actions/ComputerSystem.Reset",
    data=json.dumps({"ResetType": "ForceRestart"}).encode(), method="POST",
    headers={"Content-Type": "application/json", "Authorization": "Basic " + base64.b64encode(
        (cfg["user"] + ":" + cfg["password"]).encode()).decode()})
urllib.request.urlopen(request, context=context, timeout=20).read()
"""


@dataclass
class SlurmCluster:
    """slurmctld on ``ctl`` and slurmd on n1..n3, on a network of their own; ``prefix`` names everything."""

    prefix: str
    subnet: str = "10.78.41"
    containers: list[str] = field(default_factory=list)

    @property
    def network(self) -> str:
        return f"{self.prefix}-net"

    @property
    def gateway(self) -> str:
        return f"{self.subnet}.1"

    def name(self, node: str) -> str:
        return f"{self.prefix}-{node}"

    def ip(self, node: str) -> str:
        return f"{self.subnet}.{10 if node == 'ctl' else 20 + NODES.index(node) + 1}"

    @property
    def scontrol(self) -> tuple[str, ...]:
        return ("podman", "exec", self.name("ctl"), "scontrol")

    @property
    def srun(self) -> tuple[str, ...]:
        return ("podman", "exec", self.name("ctl"), "srun")

    def exec(self, node: str, *argv: str, check: bool = True) -> str:
        return podman("exec", self.name(node), *argv, check=check).stdout

    def start(self) -> SlurmCluster:
        image = ensure_derived(IMAGE)
        self.stop()
        podman("network", "create", "--subnet", f"{self.subnet}.0/24", "--gateway", self.gateway, self.network)
        hosts = [f"--add-host={n}:{self.ip(n)}" for n in ("ctl", *NODES)]
        for node in ("ctl", *NODES):
            podman("run", "-d", "--name", self.name(node), "--hostname", node, "--network", self.network,
                   "--ip", self.ip(node), *hosts, image, "sleep", "infinity")
            self.containers.append(self.name(node))
        conf = SLURM_CONF.format(
            ctl_ip=self.ip("ctl"), node_list=",".join(NODES),
            nodes="\n".join(f"NodeName={n} NodeAddr={self.ip(n)} CPUs=1 RealMemory=100 State=UNKNOWN"
                            for n in NODES))
        for node in ("ctl", *NODES):
            podman("exec", "-i", self.name(node), "sh", "-c", "mkdir -p /etc/slurm && cat > /etc/slurm/slurm.conf",
                   input=conf)
            self.exec(node, "sh", "-c", "mkdir -p /run/munge /var/log/slurm && chown munge:munge /run/munge && "
                      "chown slurm:slurm /var/log/slurm && runuser -u munge -- /usr/sbin/munged")
        self.exec("ctl", "sh", "-c", "mkdir -p /var/spool/slurmctld && chown slurm:slurm /var/spool/slurmctld && "
                  "/usr/sbin/slurmctld")
        for node in NODES:
            for path, text in (("/usr/local/sbin/bitten-test-reboot", REBOOT),
                               ("/usr/local/sbin/bitten-test-bmc-reset", BMC_RESET)):
                podman("exec", "-i", self.name(node), "sh", "-c", f"cat > {path} && chmod 0755 {path}", input=text)
            self.exec(node, "sh", "-c", "mkdir -p /var/spool/slurmd && /usr/sbin/slurmd")
        self.wait_idle(NODES)
        return self

    def bmcs(self, bmc: dict[str, dict[str, str]], ca: Path) -> None:
        """Tell each node where its BMC answers (its RebootProgram restarts the machine there)."""
        for node in NODES:
            podman("exec", "-i", self.name(node), "sh", "-c", "mkdir -p /etc/bitten-test && cat > "
                   "/etc/bitten-test/bmc.json", input=json.dumps(bmc[node]))
            podman("cp", str(ca), f"{self.name(node)}:/etc/bitten-test/ca.pem")

    def wait_idle(self, nodes: tuple[str, ...] | list[str], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            out = self.exec("ctl", "sinfo", "-h", "-N", "-o", "%N %T", check=False)
            states = dict(line.split() for line in out.splitlines() if line.strip())
            if all(states.get(n) == "idle" for n in nodes):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"nodes not idle after {timeout} s: {states}; slurmctld log:\n"
                                   + self.exec("ctl", "tail", "-n", "30", "/var/log/slurm/slurmctld.log",
                                               check=False))
            time.sleep(1)

    def submit(self, node: str, seconds: int) -> str:
        """A batch job sleeping ``seconds`` on ``node``; its job id."""
        out = self.exec("ctl", "sbatch", "--parsable", f"--nodelist={node}", "--job-name=survivor",
                        f"--wrap=sleep {seconds}")
        return out.strip().split(";")[0]

    def wait_running(self, job: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.job_state(job) != "RUNNING":
            if time.monotonic() > deadline:
                raise RuntimeError(f"job {job} not running after {timeout} s: {self.job_state(job)}")
            time.sleep(0.5)

    def job_state(self, job: str) -> str:
        out = self.exec("ctl", "scontrol", "show", "job", "-o", job, check=False)
        found = next((p for p in out.split() if p.startswith("JobState=")), "JobState=UNKNOWN")
        return found.split("=", 1)[1]

    def node_line(self, node: str) -> str:
        return self.exec("ctl", "scontrol", "show", "node", "-o", node)

    def stop(self) -> None:
        names = [self.name(n) for n in ("ctl", *NODES)]
        subprocess.run(["podman", "rm", "-f", "-t", "0", *names], capture_output=True, check=False)
        with contextlib.suppress(PodmanError):
            podman("network", "rm", "-f", self.network, check=False)
        self.containers.clear()
