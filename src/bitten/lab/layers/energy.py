"""The energy layer of `bitten lab`: the Energi Data Service TEST DOUBLE on the gateway, the nvidia-smi TEST DOUBLE
on the GPU nodes (it records the power limits bitten-gpu-power gives it), a summary of the controller's last
decisions and each lab job's energy figures, and `bitten energy drill grid-peak`.

Imported by bitten.lab.layers.load (LAYERS); registers on import.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from bitten.lab.service import SERVICES, SUMMARIES, LabService

if TYPE_CHECKING:
    from bitten.lab.lab import Lab
    from bitten.site.model import Policy, Site

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
        # the grid's CO2 over each job: the controller's signal cache (the Energi Data Service double's values)
        realised: list[Any] = []
        forecast: list[Any] = []
        energy_ctl = _controller(lab)
        if energy_ctl is not None:
            cache = pm.exec_in(energy_ctl, ["cat", f"{site.energy.controller.state_dir}/signals.json"], check=False)
            if cache.returncode == 0:
                (Path(tmp) / "signals.json").write_text(cache.stdout)
                try:
                    realised, forecast = att.co2_points(Path(tmp) / "signals.json")
                except (ValueError, KeyError, TypeError):
                    realised, forecast = [], []
        nodes = att.node_infos(site)
        results = [att.attribute(job, ledger=ledger, nodes=nodes, realised=realised, forecast=forecast)
                   for job in records]
        if ledger is not None:
            ledger.close()
    table = Table(title="energy per lab job (SIMULATED: the lab's meters are the plant simulator's, node power is "
                  "an estimate from the profile, the grid's CO2 the signal double's; bitten energy jobs)")
    for column in ("job", "user", "state", "IT energy", "PUE", "facility energy", "reused heat", "grid CO2",
                   "CO2"):
        table.add_column(column)

    def cell(fig: att.Figure) -> str:
        return "-" if fig.value is None else f"{fig.value:.4g} {fig.unit} ({fig.status})"

    for r in results:
        table.add_row(r.job.job_id, r.job.user, r.job.state, cell(r.it_energy), cell(r.pue), cell(r.facility_energy),
                      cell(r.reused_heat), cell(r.co2_intensity), cell(r.co2))
    return table


def summary(lab: Lab) -> object:
    # imported here, not at the top: only this path needs it, and start-up stays light
    from rich.console import Group

    parts = [p for p in (decisions_table(lab), jobs_table(lab)) if p is not None]
    return Group(*parts) if parts else None  # type: ignore[arg-type]


SERVICES.append(LabService(SERVICE, _argv, summary=None, port=_grid_port, prepare=prepare))
SUMMARIES.append(summary)


# --- the drill ----------------------------------------------------------------------------------------------------
#: the grid during the drill's peak and after it (g/kWh; the double's dear price comes with the peak)
PEAK_CO2, QUIET_CO2, PEAK_PRICE, QUIET_PRICE = 420.0, 110.0, 2400.0, 500.0
#: how long after the drill's end the double's trace stays quiet (it serves a peak only while a drill runs)
QUIET_FOR_S = 86400.0


@dataclass(frozen=True)
class DrillPlan:
    """What the grid-peak drill does and expects, from the site: who submits the flexible jobs where, which
    policies a peak turns on, and the GPU limit each GPU node must show during the peak and after it."""

    controller: str  # the host running the energy controller
    slurm_host: str  # where squeue and scancel run (the first Slurm controller)
    submit_host: str  # where the jobs are submitted (the first login node, else the Slurm controller)
    user: str  # a research user of an account that allows the flexible QoS
    sbatch: tuple[str, ...]
    jobs: int
    qos: str
    policies: tuple[str, ...]
    #: node -> the per-GPU limit during the peak (the lowest active cap within floor and range) and after it
    capped_w: dict[str, float]
    max_w: dict[str, float]


def _active_at(policy: Policy, values: dict[str, float]) -> bool:
    # imported here, not at the top: only this path needs it (numpy), and start-up stays light
    from bitten.energy.policy import PolicyMachine

    machine = PolicyMachine(policy)
    # the peak's price ranks first of the day's quarter hours, a quiet one last
    rank = 1 if values.get("price") == PEAK_PRICE else 96
    return machine.update(0.0, dict[str, float | None](values), {"price": rank}).active


def drill_plan(site: Site) -> DrillPlan | str:
    """The drill's plan, or why this site cannot run it (a sentence naming what is missing)."""
    # imported here, not at the top: only this path needs it, and start-up stays light
    from bitten.lab.layers.slurm import PROBE_RESOURCES
    from bitten.lab.layers.slurm import host as submit_host

    hosts = site.energy_controller_hosts
    if not hosts or site.energy.signals.grid is None or not site.controllers:
        return "this inventory has no energy controller with grid signals"
    peak = {"co2": PEAK_CO2, "co2_forecast": PEAK_CO2, "price": PEAK_PRICE}
    quiet = {"co2": QUIET_CO2, "co2_forecast": QUIET_CO2, "price": QUIET_PRICE}
    active = [p for p in site.energy.policies if p.enabled and _active_at(p, peak) and not _active_at(p, quiet)]
    caps = [p for p in active if p.action.type == "gpu_cap"]
    holds = [p for p in active if p.action.type == "hold"]
    if not caps or not holds:
        return (f"the drill needs a gpu_cap and a hold policy that a grid peak (CO2 {PEAK_CO2:g} g/kWh, price "
                f"{PEAK_PRICE:g} DKK/MWh) turns on and a quiet grid ({QUIET_CO2:g} g/kWh) turns off; this site's "
                f"policies: {', '.join(p.name for p in site.energy.policies) or 'none'}")
    hold = holds[0].action
    assert hold.type == "hold"
    partition = next((part for part in site.partitions if part.gpu and hold.qos in part.qos), None)
    if partition is None:
        return f"no GPU partition allows the flexible QoS {hold.qos}"
    account, user = next(((a.name, u) for a in site.accounts if not a.qos or hold.qos in a.qos
                          for u in a.users if u != "root"), (None, None))
    if user is None or account is None:
        return f"no research user of bitten_accounts may submit with QoS {hold.qos} (the drill submits as one)"
    capped: dict[str, float] = {}
    maximum: dict[str, float] = {}
    for cap in caps:
        assert cap.action.type == "gpu_cap"
        for node in site.partition_nodes(next(p for p in site.partitions if p.name == cap.action.partition)):
            profile = site.profile_of(node)
            top = profile.gpu.max_power_watts if profile is not None and profile.gpu is not None else None
            if profile is None or profile.gpu is None or top is None:
                continue
            floor = site.energy.cap_floor_watts.get(site.nodes[node].hardware_profile or "", 0)
            target = min(top, max(cap.action.watts_per_gpu, floor, profile.gpu.min_power_watts or 0))
            capped[node] = min(capped.get(node, float(top)), float(target))
            maximum[node] = float(top)
    if not capped:
        return "the gpu_cap policies name no partition with GPU nodes whose power range the profile gives"
    nodes = site.partition_nodes(partition)
    per_node = max((p.gpu.count for n in nodes if (p := site.profile_of(n)) is not None and p.gpu), default=1)
    sbatch = ("sbatch", "--parsable", f"--partition={partition.name}", f"--account={account}", f"--qos={hold.qos}",
              f"--gres=gpu:{per_node}", *PROBE_RESOURCES, "--time=10", "--chdir=/tmp", "--output=/dev/null",
              "--wrap", "sleep 900")
    where = submit_host(site) or site.controllers[0]
    # more flexible work than the GPUs take: one job per node runs (and runs on), the rest wait and are held
    return DrillPlan(hosts[0], site.controllers[0], where, user, sbatch, len(nodes) + 2, hold.qos,
                     tuple(p.name for p in caps + holds), capped, maximum)


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


def _jobs(lab: Lab, host: str, jobs: list[str]) -> dict[str, str]:
    """squeue's state and reason per job (a job squeue no longer shows has ended)."""
    # imported here, not at the top: only this path needs it, and start-up stays light
    from bitten.lab import podman as pm

    proc = pm.exec_in(lab.container_name(host), ["squeue", "--noheader", "--format=%i|%T|%r",
                                                 f"--jobs={','.join(jobs)}"], check=False)
    out = {}
    for line in proc.stdout.splitlines():
        job, _, rest = line.strip().partition("|")
        out[job] = rest
    return out


@dataclass
class Seen:
    """One look at the GPU nodes and the drill's jobs."""

    limits: dict[str, list[float]]
    jobs: dict[str, str]

    def at(self, want: dict[str, float]) -> bool:
        """Every GPU of every node at the wanted limit (within a watt)."""
        return all((got := self.limits.get(n)) and all(abs(x - w) <= 1 for x in got) for n, w in want.items())

    @property
    def held(self) -> list[str]:
        return sorted(j for j, state in self.jobs.items() if state.endswith("|JobHeldAdmin"))


def _look(lab: Lab, plan: DrillPlan, jobs: list[str]) -> Seen:
    return Seen({n: _limits(lab, n) for n in plan.capped_w}, _jobs(lab, plan.slurm_host, jobs))


def _show(lab: Lab, title: str, plan: DrillPlan, jobs: list[str], seen: Seen) -> None:
    # imported here, not at the top: only this path needs it, and start-up stays light
    from rich.table import Table

    table = Table(title=title)
    for column in ("what", "state", "expected"):
        table.add_column(column)
    capped = "capped" in title
    for node in plan.capped_w:
        want = plan.capped_w[node] if capped else plan.max_w[node]
        table.add_row(f"{node} GPU power limits (nvidia-smi double)",
                      ", ".join(f"{x:g} W" for x in seen.limits.get(node, [])) or "no answer", f"{want:g} W each")
    for job in jobs:
        table.add_row(f"job {job} (state|reason)", seen.jobs.get(job, "ended"),
                      "held (JobHeldAdmin) if pending" if capped else "not held")
    lab.console.print(table)


def _wait(lab: Lab, plan: DrillPlan, jobs: list[str], done: Callable[[Seen], bool], timeout: float,
          poll_s: float) -> tuple[Seen, bool, float]:
    started = time.monotonic()
    while True:
        seen = _look(lab, plan, jobs)
        elapsed = time.monotonic() - started
        if done(seen):
            return seen, True, elapsed
        if elapsed >= timeout:
            return seen, False, elapsed
        time.sleep(poll_s)


def grid_peak(lab: Lab, peak_s: float, timeout: float, poll_s: float = 3.0) -> int:
    """The grid-peak drill: flexible jobs queued behind running ones; a grid peak on the signal double; the
    controller switched to act. It must cap every GPU node to the policy's limit (read from the nvidia-smi double)
    and hold the pending flexible jobs (squeue: JobHeldAdmin); after peak_s the peak passes (the double serves a
    quiet grid) and it must lift the caps and release the jobs. Then the jobs are cancelled and the controller goes
    back to the site's mode. 0: all of it seen; 1: not; 2: the site cannot run the drill."""
    # imported here, not at the top: only this path needs it, and start-up stays light
    from bitten.lab import podman as pm

    plan = drill_plan(lab.site)
    if isinstance(plan, str):
        lab.console.print(f"[red]error[/]: {plan}")
        return 2
    grid = lab.site.energy.signals.grid
    assert grid is not None
    session = requests.Session()
    session.trust_env = False  # the lab network is on this machine: never through a proxy
    url = f"{grid.url.rstrip('/')}/testdouble/peak"
    ctl = lab.container_name(plan.controller)

    def signal(body: dict[str, float]) -> None:
        session.post(url, json={"high": PEAK_CO2, "low": QUIET_CO2, **body}, timeout=10).raise_for_status()

    jobs: list[str] = []
    try:
        for _ in range(plan.jobs):
            proc = pm.exec_in(lab.container_name(plan.submit_host), ["runuser", "-u", plan.user, "--",
                                                                     *plan.sbatch], check=False)
            if proc.returncode != 0:
                lab.console.print(f"[red]sbatch as {plan.user} on {plan.submit_host} failed[/]: "
                                  f"{(proc.stderr or proc.stdout).strip()[:300]}")
                return 1
            jobs.append(proc.stdout.strip().split(";")[0])
        lab.console.print(f"submitted {len(jobs)} flexible jobs (QoS {plan.qos}) as {plan.user} on "
                          f"{plan.submit_host}: {', '.join(jobs)}; the GPU nodes take {plan.jobs - 2} of them")
        # the peak lasts until the drill ends it (after peak_s), however long the controller takes to react
        signal({"before_s": 0, "peak_s": peak_s + timeout + 600, "after_s": QUIET_FOR_S})
        started = time.monotonic()
        pm.exec_in(ctl, ["bitten-energy", "mode", "act"])
        lab.console.print(f"grid peak on the signal double (CO2 {PEAK_CO2:g} g/kWh); the controller on "
                          f"{plan.controller} switched to act; policies {', '.join(plan.policies)}")

        def during(s: Seen) -> bool:
            return s.at(plan.capped_w) and bool(s.held)

        seen, capped, took = _wait(lab, plan, jobs, during, timeout, poll_s)
        _show(lab, f"during the peak: capped and held after {took:.0f} s" if capped else
              f"during the peak: NOT capped and held within {timeout:.0f} s", plan, jobs, seen)
        if capped:
            time.sleep(max(0.0, peak_s - (time.monotonic() - started)))
        held = seen.held
        signal({"before_s": QUIET_FOR_S, "peak_s": 300})
        lab.console.print(f"the peak passed ({time.monotonic() - started:.0f} s): the double serves a quiet grid")

        def after(s: Seen) -> bool:
            return s.at(plan.max_w) and not s.held

        seen, released, took = _wait(lab, plan, jobs, after, timeout, poll_s)
        _show(lab, f"after the peak: lifted and released after {took:.0f} s" if released else
              f"after the peak: NOT lifted and released within {timeout:.0f} s", plan, jobs, seen)
    finally:
        if jobs:
            pm.exec_in(lab.container_name(plan.slurm_host), ["scancel", *jobs], check=False)
        pm.exec_in(ctl, ["bitten-energy", "mode", "site"], check=False)
        with contextlib.suppress(requests.RequestException):
            signal({"before_s": QUIET_FOR_S, "peak_s": 300})
    table = decisions_table(lab)
    if table is not None:
        lab.console.print(table)
    ok = capped and released
    lab.console.print("[green]✓[/] the drill saw caps and holds in the peak and both undone after it" if ok else
                      f"[red]the drill did not see everything[/]: capped and held={capped} (held jobs: "
                      f"{', '.join(held) or 'none'}), lifted and released={released}")
    return 0 if ok else 1
