"""Lab layer: Slurm. After the playbooks, show `sinfo` and run jobs through Slurm as a researcher would.

The jobs go through the real daemons, submitted on the first login node (the controller when there is none) as a
research user of the inventory's accounts (bounded by `timeout`): a step on every GPU node, and a batch job with
one GPU whose accounting record (with its GRES) is read back from slurmdbd. When Slurm refuses a job for its
account or QoS, the summary says why and how a user (or root, whose own association is account root with QoS
normal) gets past it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.console import Group
from rich.panel import Panel
from rich.text import Text

from bitten.lab import podman as pm
from bitten.lab.service import SUMMARIES, Checked
from bitten.site.model import GROUP_LOGIN, Partition, Site

if TYPE_CHECKING:
    from bitten.lab.lab import Lab

#: seconds a lab job may take before the summary gives up on it
JOB_TIMEOUT = 90
#: what each probe asks Slurm for per node, so that it fits beside other jobs on a busy lab whatever the partition's
#: defaults (DefMemPerGPU/DefMemPerCPU give a job without --mem a node's share; before them, the whole node)
PROBE_RESOURCES = ["--ntasks-per-node=1", "--cpus-per-task=1", "--mem=64M"]


@dataclass(frozen=True)
class Probe:
    """One command the summary runs, as whom, and how to show it."""

    title: str
    argv: list[str]
    #: who submits it: a research user of the inventory's accounts, root only when there is none
    user: str = "root"


@dataclass(frozen=True)
class JobOptions:
    partition: Partition
    user: str
    account: str | None
    qos: str

    @property
    def argv(self) -> list[str]:
        account = [f"--account={self.account}"] if self.account else []
        return [f"--partition={self.partition.name}", *account, f"--qos={self.qos}"]


def _job_options(site: Site, want_gpu: bool) -> JobOptions | None:
    """A partition of the wanted kind, a user of one of the inventory's accounts (not root, when the accounts have
    another user: the summary submits as a researcher would) and a QoS both allow."""
    for part in site.partitions:
        if part.gpu != want_gpu or not site.partition_nodes(part):
            continue
        found = [(user != "root", account.name, user, qos)
                 for account in site.accounts for user in account.users
                 for qos in ([q for q in part.qos if q in account.qos] if account.qos else list(part.qos))[:1]]
        if found:
            _, account_name, user, qos = max(found, key=lambda f: f[0])
            return JobOptions(part, user, account_name, qos)
        if not want_gpu and "normal" in part.qos:
            # root's own association (account root) has the normal QoS
            return JobOptions(part, "root", None, "normal")
    return None


#: what Slurm prints when it refuses a job for its association (sbatch/srun: error: ...)
_REFUSED = ("Invalid account", "Invalid qos", "QOS not permitted", "Job's QOS not permitted")


def hint(site: Site, probe: Probe, output: str) -> str | None:
    """Why Slurm refused ``probe``'s job for its account or QoS, and what a user or root does about it."""
    if not any(text.lower() in output.lower() for text in _REFUSED):
        return None
    users = sorted({u for a in site.accounts for u in a.users if u != "root"})
    allowed = "; ".join(f"{p.name}: {', '.join(p.qos)}" for p in site.partitions)
    accounts = "; ".join(f"{a.name}: users {', '.join(a.users) or '-'}, QoS {', '.join(a.qos) or 'all'}"
                         for a in site.accounts) or "none"
    text = (f"Slurm refused the job of {probe.user} for its account or QoS. Partitions allow QoS ({allowed}); "
            f"the inventory's accounts (bitten_accounts) are {accounts}. ")
    if probe.user == "root":
        text += ("root without --account gets its own association (account root, QoS normal), which a partition "
                 "whose AllowQos lacks normal refuses: ")
        text += (f"submit as a research user ({', '.join(users)}: runuser -u {users[0]} -- sbatch ...)" if users
                 else "add a research user to an account in bitten_accounts (or root, with --account and --qos)")
    else:
        text += (f"Is {probe.user} in sacctmgr (sacctmgr show assoc user={probe.user})? The slurm role applies "
                 "bitten_accounts; run playbooks/slurm.yml again if it was changed since.")
    return text


def probes(site: Site) -> list[Probe]:
    """The commands of the Slurm summary, derived from the site (partitions, QoS, accounts and their users)."""
    timeout = ["timeout", str(JOB_TIMEOUT)]
    gpu = _job_options(site, want_gpu=True)
    cpu = _job_options(site, want_gpu=False)
    first = gpu or cpu
    out = [Probe("sinfo", ["sinfo"], user=first.user if first else "root")]
    if gpu:
        nodes = len(site.partition_nodes(gpu.partition))
        out.append(Probe(f"srun on all {nodes} nodes of partition {gpu.partition.name}",
                         [*timeout, "srun", f"--nodes={nodes}", *gpu.argv, *PROBE_RESOURCES, "--time=1",
                          "--chdir=/tmp", "hostname"],
                         user=gpu.user))
        script = "hostname; echo CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES"
        out.append(Probe(
            "batch job with one GPU, and its accounting record",
            ["sh", "-c",
             f"job=$({' '.join(timeout)} sbatch --parsable --wait {' '.join(gpu.argv)} {' '.join(PROBE_RESOURCES)} "
             "--gres=gpu:1 --time=1 "
             f"--chdir=/tmp --output=/dev/null --wrap '{script}') || exit 1; "
             "for i in $(seq 15); do sacct -X -n -j $job -o JobID,Partition,QOS,State,NodeList,AllocTRES%60 "
             "| grep -q COMPLETED && break; sleep 1; done; "
             "sacct -X -j $job -o JobID,User,Account,QOS,State,NodeList%12,AllocTRES%58"],
            user=gpu.user,
        ))
    if cpu:
        out.append(Probe(f"srun in partition {cpu.partition.name}",
                         [*timeout, "srun", "--nodes=1", *cpu.argv, *PROBE_RESOURCES, "--time=1",
                          "--chdir=/tmp", "hostname"],
                         user=cpu.user))
    return out


def host(site: Site) -> str | None:
    """Where the summary submits: the first login node, as a researcher would, else the first controller."""
    logins = site.hosts_in(GROUP_LOGIN)
    return logins[0] if logins else (site.controllers[0] if site.controllers else None)


def as_user(probe: Probe) -> list[str]:
    return probe.argv if probe.user == "root" else ["runuser", "-u", probe.user, "--", *probe.argv]


def render(results: Sequence[tuple[Probe, int, str]], site: Site | None = None, where: str = "") -> Checked:
    parts: list[Text] = []
    failed = 0
    for probe, rc, output in results:
        mark = "[green]✓[/]" if rc == 0 else f"[red]✗ (exit {rc})[/]"
        failed += rc != 0
        parts.append(Text.from_markup(f"{mark} [bold]{probe.title}[/] (as {probe.user})"))
        parts.append(Text(output.rstrip() + "\n"))
        advice = hint(site, probe, output) if site is not None and rc != 0 else None
        if advice:
            parts.append(Text.assemble(("hint", "yellow"), f": {advice}\n"))
    title = f"Slurm{' on ' + where if where else ''}"
    title = title if not failed else f"{title}: {failed} check(s) failed"
    return Checked(Panel(Group(*parts), title=title, border_style="green" if not failed else "red"), failed)


def summary(lab: Lab, run: Callable[[str, list[str]], tuple[int, str]] | None = None) -> object:
    """sinfo and jobs through Slurm on a login node, as a research user; ``run`` executes argv in a container."""
    name = host(lab.site)
    if name is None:
        return None
    container = lab.container_name(name)
    runner = run or _podman_run
    results = []
    for probe in probes(lab.site):
        rc, output = runner(container, as_user(probe))
        results.append((probe, rc, output))
    return render(results, lab.site, name)


def _podman_run(container: str, argv: list[str]) -> tuple[int, str]:
    try:
        proc = pm.exec_in(container, argv, check=False)
    except pm.PodmanError as exc:
        return 1, str(exc)
    return proc.returncode, (proc.stdout + proc.stderr)


SUMMARIES.append(summary)
