"""Human-readable plans, results and rollouts (rich tables) for the CLI and the lab summary."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from bitten.hardware.fleet import FleetResult, NodeResult
from bitten.hardware.rollout import RolloutResult


def _plan_text(result: NodeResult) -> Text:
    text = Text()
    if result.error:
        text.append(result.error, style="red")
        return text
    plan = result.plan
    if plan is None:
        return text
    lines = plan.lines() + [str(d) for d in result.firmware]
    if not plan.changed and not plan.problems and not result.firmware:
        lines.insert(0, "in the desired state")
    if result.reboot:
        lines.append(f"reboot: waits for a reboot ({'; '.join(result.reboot)}): bitten hardware rollout")
    for i, line in enumerate(lines):
        if i:
            text.append("\n")
        text.append(line, style=_style(line))
    return text


def _style(line: str) -> str:
    if line == "in the desired state":
        return "green"
    if line.startswith("problem:"):
        return "red"
    if line.startswith("note:"):
        return "dim"
    if line.startswith("reboot:"):
        return "magenta"
    if "pending until" in line:
        return "cyan"
    return "yellow"


def fleet_table(result: FleetResult, title: str | None = None) -> Table:
    """One row per node: what the plan holds (plan), or what was done (apply)."""
    verb = {"plan": "plan", "apply": "applied", "inventory": "inventory"}[result.action]
    table = Table(title=title, show_lines=True)
    table.add_column("host", no_wrap=True)
    table.add_column("power", no_wrap=True)
    table.add_column(verb)
    for node in result.results:
        power = node.power or "-"
        table.add_row(node.host, power, _plan_text(node))
    return table


def inventory_table(result: FleetResult, title: str | None = None) -> Table:
    table = Table(title=title)
    for column in ("host", "model", "serial", "power", "cpus/cores", "memory", "gpus", "macs"):
        table.add_column(column)
    for node in result.results:
        inv = node.inventory
        if inv is None:
            table.add_row(node.host, Text(node.error or "-", style="red"), "", "", "", "", "", "")
            continue
        memory = f"{inv.memory_gib:g} GiB" if inv.memory_gib is not None else "-"
        gpus = f"{len(inv.gpus)}x {inv.gpus[0].model}" if inv.gpus else "-"
        table.add_row(node.host, inv.model or "-", inv.serial or "-", inv.power or "-",
                      f"{len(inv.processors)}/{inv.cores}", memory, gpus, "\n".join(inv.macs) or "-")
    return table


def summary(result: FleetResult) -> str:
    """One line: how many nodes, changed/to change, unchanged, failed, in how long."""
    total = len(result.results)
    failed = len(result.failed)
    if result.action == "inventory":
        return f"{total} node(s) read, {failed} failed, in {result.seconds:.1f} s"
    changing = sum(1 for r in result.results if r.ok and r.plan is not None and r.plan.changed)
    pending = sum(1 for r in result.results if r.ok and (r.pending or (r.plan is not None and r.plan.pending)))
    reboot = sum(1 for r in result.results if r.ok and r.reboot)
    word = "to change" if result.action == "plan" else "changed"
    return (f"{total} node(s): {changing} {word}, {total - changing - failed} unchanged, {failed} failed"
            + (f", {pending} with BIOS settings pending until the next reboot" if pending else "")
            + (f", {reboot} waiting for a reboot (bitten hardware rollout)" if reboot else "")
            + f" ({result.seconds:.1f} s)")


def rollout_table(result: RolloutResult, title: str | None = None) -> Table:
    """One row per node of a rollout: its wave, why it was rebooted, and how it ended."""
    table = Table(title=title)
    for column in ("wave", "host", "why", "result"):
        table.add_column(column)
    styles = {"done": "green", "failed": "red", "held": "yellow", "skipped": "dim"}
    for node in result.nodes:
        table.add_row(str(node.wave), node.host, node.why,
                      Text(f"{node.state}: {node.detail}" if node.detail else node.state,
                           style=styles.get(node.state, "")))
    return table
