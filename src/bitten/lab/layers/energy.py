"""The energy layer of `bitten lab`: the Energi Data Service TEST DOUBLE on the gateway, the nvidia-smi TEST DOUBLE
on the GPU nodes (it records the power limits bitten-gpu-power gives it), a summary of the controller's last
decisions and each lab job's energy figures, and `bitten energy drill grid-peak`.

Imported by bitten.lab.layers.load (LAYERS); registers on import.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from bitten.lab.service import SERVICES, SUMMARIES, LabService

if TYPE_CHECKING:
    from bitten.lab.lab import Lab

SERVICE = "energinet-double"
SMI_DOUBLE = "/usr/local/lib/bitten-lab/nvidia-smi"
ROOT = Path(__file__).resolve().parents[4]


def _grid_port(lab: Lab) -> int:
    grid = lab.site.energy.signals.grid
    return (urlsplit(grid.url).port or 80) if grid is not None else 8447


def _argv(lab: Lab) -> list[str]:
    return [sys.executable, "-m", "bitten.lab.doubles.energinet", "--listen", f"{lab.gateway}:{_grid_port(lab)}"]


def _gpu_nodes(lab: Lab) -> list[str]:
    return [h for h in lab.site.compute_nodes if (p := lab.site.profile_of(h)) is not None and p.gpu is not None]


def prepare(lab: Lab) -> None:
    """Put the nvidia-smi TEST DOUBLE where the lab's bitten-gpu-power runs it, with the profile's GPUs."""
    # imported here, not at the top: only this path needs it, and start-up stays light
    from bitten.lab import podman as pm

    double = (ROOT / "tests" / "doubles" / "nvidia-smi").read_text()
    for host in _gpu_nodes(lab):
        profile = lab.site.profile_of(host)
        assert profile is not None and profile.gpu is not None
        state = {"count": profile.gpu.count, "min_w": profile.gpu.min_power_watts or 100,
                 "max_w": profile.gpu.max_power_watts or 1000, "limits": {}}
        name = lab.container_name(host)
        pm.exec_in(name, ["sh", "-c", f"install -d /usr/local/lib/bitten-lab /var/lib/nvidia-smi-double && cat > "
                          f"{SMI_DOUBLE} && chmod 0755 {SMI_DOUBLE}"], input=double)
        pm.exec_in(name, ["sh", "-c", "test -e /var/lib/nvidia-smi-double/power.json || "
                          "cat > /var/lib/nvidia-smi-double/power.json"], input=json.dumps(state))


def _controller(lab: Lab) -> str | None:
    hosts = lab.site.energy_controller_hosts
    return lab.container_name(hosts[0]) if hosts else None


def _decisions(lab: Lab, last: int = 8) -> list[dict[str, Any]]:
    # imported here, not at the top: only this path needs it, and start-up stays light
    from bitten.lab import podman as pm

    ctl = _controller(lab)
    if ctl is None:
        return []
    proc = pm.exec_in(ctl, ["bitten-energy", "decisions", "--json", "--last", str(last)], check=False)
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        return []
    return out if isinstance(out, list) else []


def decisions_table(lab: Lab) -> object:

    # imported here, not at the top: only this path needs it, and start-up stays light
    from rich.table import Table

    ctl = _controller(lab)
    if ctl is None:
        return None
    entries = _decisions(lab)
    if not entries:
        return f"energy: no decisions from the controller on {ctl} yet (bitten-energy decisions)"
    table = Table(title=f"energy controller: last decisions ({ctl}; bitten-energy decisions)")
    for column in ("time (UTC)", "mode", "subject", "decision", "actuators reported"):
        table.add_column(column)
    for e in entries:
        acts = "; ".join(f"{a['target']}: {a['reported'] if a.get('reported') is not None else a.get('error')}"
                         for a in e.get("actuators", []))
        table.add_row(datetime.fromtimestamp(e["time"], UTC).strftime("%H:%M:%S"), e["mode"], e["subject"],
                      e["decision"], acts[:80])
    return table


def jobs_table(lab: Lab) -> object:
    """Each lab job's energy figures: bitten's attribution from the lab's ledger (the plant simulator's meters)."""

    # imported here, not at the top: only this path needs it, and start-up stays light
    from rich.table import Table

    from bitten.energy import attribution as att
    from bitten.lab import podman as pm

    site = lab.site
    if not site.cooling_agent_hosts or not site.controllers:
        return None
    ctl = lab.container_name(site.controllers[0])
    proc = pm.exec_in(ctl, ["env", "TZ=UTC", "SLURM_TIME_FORMAT=%Y-%m-%dT%H:%M:%S", *att.SACCT], check=False)
    if proc.returncode != 0:
        return f"energy per job: sacct failed on {ctl}: {proc.stderr.strip()[:200]}"
    try:
        records = att.parse_sacct(proc.stdout)[-8:]
    except att.SacctError as exc:
        return f"energy per job: {exc}"
    agent = lab.container_name(site.cooling_agent_hosts[0])
    with tempfile.TemporaryDirectory() as tmp:
        ledger_path = Path(tmp) / "ledger.sqlite"
        # a consistent copy of the agent's ledger (SQLite's backup API, in the container), then out of it
        got = pm.exec_in(agent, ["python3", "-c", "import sqlite3; d = sqlite3.connect('/tmp/ledger-copy.sqlite'); "
                                 "sqlite3.connect('/var/lib/bitten-cooling/ledger.sqlite').backup(d); d.close()"],
                         check=False)
        ledger = None
        if got.returncode == 0 and pm.podman("cp", f"{agent}:/tmp/ledger-copy.sqlite", str(ledger_path),
                                             check=False).returncode == 0:
            from bitten.cooling.ledger import Ledger

            ledger = Ledger(ledger_path)
        nodes = att.node_infos(site)
        results = [att.attribute(job, ledger=ledger, nodes=nodes, realised=[], forecast=[]) for job in records]
        if ledger is not None:
            ledger.close()
    table = Table(title="energy per lab job (SIMULATED: the lab's meters are the plant simulator's, node power is "
                  "an estimate from the profile; bitten energy jobs)")
    for column in ("job", "user", "state", "IT energy", "PUE", "facility energy", "reused heat", "CO2"):
        table.add_column(column)

    def cell(fig: att.Figure) -> str:
        return "-" if fig.value is None else f"{fig.value:.4g} {fig.unit} ({fig.status})"

    for r in results:
        table.add_row(r.job.job_id, r.job.user, r.job.state, cell(r.it_energy), cell(r.pue), cell(r.facility_energy),
                      cell(r.reused_heat), cell(r.co2))
    return table


def summary(lab: Lab) -> object:
    # imported here, not at the top: only this path needs it, and start-up stays light
    from rich.console import Group

    parts = [p for p in (decisions_table(lab), jobs_table(lab)) if p is not None]
    return Group(*parts) if parts else None  # type: ignore[arg-type]


SERVICES.append(LabService(SERVICE, _argv, summary=None, port=_grid_port, prepare=prepare))
SUMMARIES.append(summary)


# --- the drill ----------------------------------------------------------------------------------------------------
def _limits(lab: Lab, host: str) -> list[float]:
    # imported here, not at the top: only this path needs it, and start-up stays light
    from bitten.lab import podman as pm

    proc = pm.exec_in(lab.container_name(host), [SMI_DOUBLE, "--query-gpu=index,power.limit,power.min_limit,"
                                                 "power.max_limit", "--format=csv,noheader,nounits"], check=False)
    out = []
    for line in proc.stdout.splitlines():
        parts = line.split(",")
        if len(parts) == 4:
            out.append(float(parts[1]))
    return out


def _held(lab: Lab, ctl: str, jobs: list[str]) -> dict[str, str]:
    # imported here, not at the top: only this path needs it, and start-up stays light
    from bitten.lab import podman as pm

    proc = pm.exec_in(ctl, ["squeue", "--noheader", "--format=%i|%T|%r", f"--jobs={','.join(jobs)}"], check=False)
    out = {}
    for line in proc.stdout.splitlines():
        job, _, rest = line.partition("|")
        out[job.strip()] = rest
    return out


def grid_peak(lab: Lab, peak_s: float, timeout: float) -> int:
    """A grid peak on the signal double; the controller switched to act; caps and holds shown, then undone."""
    # imported here, not at the top: only this path needs it, and start-up stays light
    from rich.table import Table

    from bitten.lab import podman as pm

    site = lab.site
    ctl = _controller(lab)
    grid = site.energy.signals.grid
    if ctl is None or grid is None or not site.controllers:
        lab.console.print("[red]error[/]: this inventory has no energy controller with grid signals")
        return 2
    slurm_ctl = lab.container_name(site.controllers[0])
    session = requests.Session()
    session.trust_env = False
    url = f"{grid.url.rstrip('/')}/testdouble/peak"
    gpu_nodes = _gpu_nodes(lab)
    gpus = sum(p.gpu.count for h in gpu_nodes if (p := site.profile_of(h)) is not None and p.gpu is not None)
    # more flexible work than the GPUs take: some run (and run on), the rest wait and are held
    jobs = []
    for _ in range(len(gpu_nodes) + 2):
        proc = pm.exec_in(slurm_ctl, ["sbatch", "--parsable", "--partition=gpu", "--qos=flexible", "--gres=gpu:2",
                                      "--time=10", "--output=/dev/null", "--wrap", "sleep 900"], check=False)
        if proc.returncode == 0:
            jobs.append(proc.stdout.strip().split(";")[0])
    lab.console.print(f"submitted {len(jobs)} flexible jobs (the {gpus} GPUs take {len(gpu_nodes)} of them)")
    session.post(url, json={"before_s": 0, "peak_s": peak_s, "high": 420, "low": 110}, timeout=10).raise_for_status()
    pm.exec_in(ctl, ["bitten-energy", "mode", "act"])
    lab.console.print(f"grid peak for {peak_s:.0f} s on the signal double; the controller on {ctl} switched to act")

    def show(title: str) -> tuple[bool, bool]:
        table = Table(title=title)
        for column in ("what", "state"):
            table.add_column(column)
        for host in gpu_nodes:
            table.add_row(f"{host} GPU power limits (nvidia-smi double)",
                          ", ".join(f"{x:g} W" for x in _limits(lab, host)))
        held_state = _held(lab, slurm_ctl, jobs)
        for job in jobs:
            table.add_row(f"job {job} (state|reason)", held_state.get(job, "ended"))
        lab.console.print(table)
        return show_quiet(lab, gpu_nodes, slurm_ctl, jobs)

    started = time.monotonic()
    capped = held = False
    while time.monotonic() - started < timeout:
        capped, held = show_quiet(lab, gpu_nodes, slurm_ctl, jobs)
        if capped and held:
            break
        time.sleep(3)
    show(f"during the peak ({time.monotonic() - started:.0f} s)")
    while time.monotonic() - started < timeout + peak_s:
        c, h = show_quiet(lab, gpu_nodes, slurm_ctl, jobs)
        if not c and not h:
            break
        time.sleep(5)
    after = show(f"after the peak ({time.monotonic() - started:.0f} s)")
    pm.exec_in(slurm_ctl, ["scancel", *jobs], check=False)
    pm.exec_in(ctl, ["bitten-energy", "mode", "site"], check=False)
    table = decisions_table(lab)
    if table is not None:
        lab.console.print(table)
    ok = capped and held and after == (False, False)
    if not ok:
        lab.console.print(f"[red]the drill did not see everything: capped={capped} held={held} released="
                          f"{after == (False, False)}[/]")
    return 0 if ok else 1


def show_quiet(lab: Lab, gpu_nodes: list[str], slurm_ctl: str, jobs: list[str]) -> tuple[bool, bool]:
    capped = all((limits := _limits(lab, h)) and all(x < 1000 for x in limits) for h in gpu_nodes)
    held = any("JobHeldAdmin" in v for v in _held(lab, slurm_ctl, jobs).values())
    return bool(capped), held
