"""The cooling layer of `bitten lab`: the simulated plant as a lab service, a summary of heat recovered and ERF,
and `bitten cooling leak`, which floods the lab CDU and shows the nodes of its loop drained.

Imported by bitten.lab.layers.load (LAYERS); registers on import.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests

from bitten.lab.service import SERVICES, SUMMARIES, LabService

if TYPE_CHECKING:
    from bitten.lab.lab import Lab
    from bitten.site.model import Site

SERVICE = "cooling-plant"


def _plant_ports(site: Site, gateway: str) -> tuple[int | None, int | None]:
    cdu = next((urlsplit(c.url).port or 443 for c in site.cooling.cdus.values()
                if urlsplit(c.url).hostname == gateway), None)
    meter = next((d.port for d in site.cooling.modbus_devices().values() if d.host == gateway), None)
    return cdu, meter


def plant_argv(lab: Lab) -> list[str]:
    cdu, meter = _plant_ports(lab.site, lab.gateway)
    controller = lab.container_name(lab.site.controllers[0]) if lab.site.controllers else ""
    return [str(Path(sys.executable).parent / "bitten"), "cooling", "simulate", "--inventory", str(lab.inventory),
            "--host", lab.gateway, "--cdu-port", str(cdu or 8444), "--modbus-port", str(meter or 5020),
            "--tls-dir", str(lab.state / "cooling"), "--load", f"slurm:{controller}"]


def _plant_port(lab: Lab) -> int:
    cdu, meter = _plant_ports(lab.site, lab.gateway)
    return cdu or meter or 8444


def metrics_url(site: Site) -> str | None:
    if not site.cooling_agent_hosts:
        return None
    agent = site.cooling.agent
    host = str(agent.listen or site.nodes[site.cooling_agent_hosts[0]].ip)
    return f"http://{host}:{agent.port}/metrics"


def read_metrics(url: str, timeout: float = 5.0) -> dict[str, list[tuple[dict[str, str], float]]]:
    # imported here, not at the top: only this path needs it, and start-up stays light
    from prometheus_client.parser import text_string_to_metric_families

    session = requests.Session()
    session.trust_env = False  # the lab network is on this machine: never through a proxy
    resp = session.get(url, timeout=timeout)
    resp.raise_for_status()
    text = resp.text
    if "bitten_cooling_" not in text:
        raise ValueError(f"{url} does not serve the cooling agent's metrics")
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def summary(lab: Lab) -> object:
    """Heat recovered and ERF so far this year, from the agent's /metrics on the controller."""
    # imported here, not at the top: only this path needs it, and start-up stays light
    from rich.table import Table

    url = metrics_url(lab.site)
    if url is None:
        return None
    try:
        metrics = read_metrics(url)
    except (requests.RequestException, ValueError) as exc:
        return f"cooling: the agent's metrics at {url} are not answering ({exc.__class__.__name__})"

    def one(name: str, **labels: str) -> float | None:
        for lab_, value in metrics.get(name, []):
            if all(lab_.get(k) == v for k, v in labels.items()):
                return value
        return None

    table = Table(title=f"cooling and heat reuse ({url})")
    table.add_column("what")
    table.add_column("value", justify="right")
    for channel, label in (("reused_heat", "heat recovered to district heating"), ("it_energy", "IT energy"),
                           ("facility_energy", "facility energy")):
        value = one("bitten_energy_ledger_joules_total", channel=channel)
        table.add_row(f"{label} (ledger)", "-" if value is None else f"{value / 3.6e6:.2f} kWh")
    for name, label in (("bitten_energy_erf_ratio", "ERF this year (reused / facility)"),
                        ("bitten_energy_pue_ratio", "PUE this year (facility / IT)")):
        value = one(name)
        table.add_row(label, "-" if value is None else f"{value:.3f}")
    for labels, value in metrics.get("bitten_cooling_heat_computed_watts", []):
        table.add_row(f"heat now, {labels.get('cdu')} {labels.get('side')} (computed)", f"{value / 1000:.2f} kW")
    active = [f"{lab_['loop']}:{lab_['kind']}" for lab_, v in metrics.get("bitten_cooling_alarm_active", []) if v]
    table.add_row("active alarms", ", ".join(active) or "none")
    unknown = [f"{lab_['loop']}:{lab_['kind']}" for lab_, v in metrics.get("bitten_cooling_alarm_input_unknown", [])
               if v]
    table.add_row("alarm inputs unknown", ", ".join(unknown) or "none")
    down = [lab_["device"] for lab_, v in metrics.get("bitten_cooling_device_up", []) if not v]
    table.add_row("devices not answering", ", ".join(down) or "none")
    stores = [lab_["store"] for lab_, v in metrics.get("bitten_cooling_store_available", []) if not v]
    table.add_row("stores unavailable (accounting degraded)", ", ".join(stores) or "none")
    return table


SERVICES.append(LabService(SERVICE, plant_argv, summary=None, port=_plant_port,
                           enabled=lambda lab: bool(lab.site.cooling.cdus or lab.site.cooling.modbus_devices())))
SUMMARIES.append(summary)


# --- the leak drill ---------------------------------------------------------------------------------------------
def leak(lab: Lab, loop: str | None, clear: bool, timeout: float) -> int:
    """Flood the loop's CDU (or clear it) and wait until Slurm shows the loop's nodes drained."""
    # imported here, not at the top: only this path needs it, and start-up stays light
    from rich.table import Table

    from bitten.cooling.reason import REASON
    from bitten.core.scontrol import parse_nodes
    from bitten.lab import podman as pm

    site = lab.site
    name = loop or next(iter(sorted(site.cooling.loops)), None)
    if name is None or name not in site.cooling.loops:
        lab.console.print(f"[red]error[/]: no cooling loop {loop!r}; loops: {', '.join(site.cooling.loops)}")
        return 2
    cdu = site.cooling.cdus[site.cooling.loops[name].cdu]
    ca = lab.state / "cooling" / "ca.pem"
    url = urlsplit(cdu.url)
    body = {"cdu": int(cdu.cdu_id)} if clear else {"cdu": int(cdu.cdu_id), "leak": True}
    path = "/sim/clear" if clear else "/sim/fault"
    session = requests.Session()
    session.trust_env = False  # the lab network is on this machine: never through a proxy
    resp = session.post(f"{url.scheme}://{url.netloc}{path}", json=body, timeout=10,
                        verify=str(ca) if url.scheme == "https" else True)
    resp.raise_for_status()
    nodes = site.loop_nodes(name)
    if clear:
        lab.console.print(f"cleared the simulated faults on {site.cooling.loops[name].cdu}; after a leak the nodes "
                          f"stay drained until an operator resumes them: "
                          f"podman exec {site.controllers[0]} bitten-cooling resume {name}")
        return 0
    lab.console.print(f"leak injected on {site.cooling.loops[name].cdu} (loop {name}); waiting for Slurm to drain "
                      f"{', '.join(nodes)}")
    start = time.monotonic()
    controller = lab.container_name(site.controllers[0])
    states = {}
    while time.monotonic() - start < timeout:
        proc = pm.exec_in(controller, ["scontrol", "show", "node", "-o", ",".join(nodes)], check=False)
        states = parse_nodes(proc.stdout)
        if nodes and all(n in states and states[n].drained and REASON.owns(states[n]) for n in nodes):
            break
        time.sleep(0.5)
    elapsed = time.monotonic() - start
    table = Table(title=f"loop {name} after the leak ({elapsed:.1f} s)")
    for column in ("node", "state", "reason"):
        table.add_column(column)
    for node in nodes:
        st = states.get(node)
        table.add_row(node, st.state if st else "?", (st.reason or "") if st else "")
    lab.console.print(table)
    drained = all(n in states and states[n].drained for n in nodes)
    if not drained:
        lab.console.print(f"[red]not every node was drained within {timeout:.0f} s[/]")
    return 0 if drained else 1
