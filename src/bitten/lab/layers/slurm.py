"""Lab layer: Slurm. After the playbooks, show `sinfo` and run jobs through Slurm on the lab's controller.

The jobs go through the real daemons (podman exec on the controller container, bounded by `timeout`): a step on
every GPU node, and a batch job with one GPU whose accounting record (with its GRES) is read back from slurmdbd.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.console import Group
from rich.panel import Panel
from rich.text import Text

from bitten.lab import podman as pm
from bitten.lab.service import SUMMARIES
from bitten.site.model import Partition, Site

if TYPE_CHECKING:
    from bitten.lab.lab import Lab

#: seconds a lab job may take before the summary gives up on it
JOB_TIMEOUT = 90


@dataclass(frozen=True)
class Probe:
    """One command the summary runs on the controller, and how to show it."""

    title: str
    argv: list[str]


def _job_options(site: Site, want_gpu: bool) -> tuple[Partition, list[str]] | None:
    """Partition and sbatch/srun options for a lab job: a partition of the wanted kind and a QoS it allows,
    through an account of the inventory whose users include root (the summary submits as root)."""
    for part in site.partitions:
        if part.gpu != want_gpu or not site.partition_nodes(part):
            continue
        for account in site.accounts:
            if "root" not in account.users:
                continue
            usable = [q for q in part.qos if q in account.qos] if account.qos else list(part.qos)
            if usable:
                return part, [f"--partition={part.name}", f"--account={account.name}", f"--qos={usable[0]}"]
        if not want_gpu and "normal" in part.qos:
            # root's own association (account root) has the normal QoS
            return part, [f"--partition={part.name}", "--qos=normal"]
    return None


def probes(site: Site) -> list[Probe]:
    """The commands of the Slurm summary, derived from the site (partitions, QoS, accounts)."""
    timeout = ["timeout", str(JOB_TIMEOUT)]
    out = [Probe("sinfo", ["sinfo"])]
    gpu = _job_options(site, want_gpu=True)
    if gpu:
        part, options = gpu
        nodes = len(site.partition_nodes(part))
        out.append(Probe(f"srun on all {nodes} nodes of partition {part.name}",
                         [*timeout, "srun", f"--nodes={nodes}", *options, "--time=1", "--chdir=/tmp", "hostname"]))
        script = "hostname; echo CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES"
        out.append(Probe(
            "batch job with one GPU, and its accounting record",
            ["sh", "-c",
             f"job=$({' '.join(timeout)} sbatch --parsable --wait {' '.join(options)} --gres=gpu:1 --time=1 "
             f"--chdir=/tmp --output=/dev/null --wrap '{script}') || exit 1; "
             "for i in $(seq 15); do sacct -X -n -j $job -o JobID,Partition,QOS,State,NodeList,AllocTRES%60 "
             "| grep -q COMPLETED && break; sleep 1; done; "
             "sacct -X -j $job -o JobID,QOS,State,NodeList%12,AllocTRES%58"],
        ))
    cpu = _job_options(site, want_gpu=False)
    if cpu:
        part, options = cpu
        out.append(Probe(f"srun in partition {part.name}",
                         [*timeout, "srun", "--nodes=1", *options, "--time=1", "--chdir=/tmp", "hostname"]))
    return out


def render(results: Sequence[tuple[Probe, int, str]]) -> Panel:
    parts: list[Text] = []
    failed = 0
    for probe, rc, output in results:
        mark = "[green]✓[/]" if rc == 0 else f"[red]✗ (exit {rc})[/]"
        failed += rc != 0
        parts.append(Text.from_markup(f"{mark} [bold]{probe.title}[/]"))
        parts.append(Text(output.rstrip() + "\n"))
    title = "Slurm" if not failed else f"Slurm: {failed} check(s) failed"
    return Panel(Group(*parts), title=title, border_style="green" if not failed else "red")


def summary(lab: Lab, run: Callable[[str, list[str]], tuple[int, str]] | None = None) -> object:
    """sinfo and jobs through Slurm on the first controller; ``run`` executes argv in a container."""
    if not lab.site.controllers:
        return None
    container = lab.container_name(lab.site.controllers[0])
    runner = run or _podman_run
    results = []
    for probe in probes(lab.site):
        rc, output = runner(container, probe.argv)
        results.append((probe, rc, output))
    return render(results)


def _podman_run(container: str, argv: list[str]) -> tuple[int, str]:
    try:
        proc = pm.exec_in(container, argv, check=False)
    except pm.PodmanError as exc:
        return 1, str(exc)
    return proc.returncode, (proc.stdout + proc.stderr)


SUMMARIES.append(summary)
