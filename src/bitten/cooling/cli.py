"""`bitten cooling ...` (the agent and its tools) and `bitten energy ...` (reports from the ledger)."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bitten.site.problems import EXIT_INVALID

app = typer.Typer(no_args_is_help=True, help="the cooling agent: CDUs, meters, alarms into Slurm, the ledger")
energy_app = typer.Typer(no_args_is_help=True, help="energy reports from the ledger (PUE, ERF, EU report)")
err = Console(stderr=True, highlight=False)
out = Console(highlight=False)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="the agent's configuration file")]


def _config(path: Path):  # type: ignore[no-untyped-def]
    # imported here, not at the top: only this path needs it, and start-up stays light
    from bitten.cooling.config import AgentConfigError, load_config

    try:
        return load_config(path)
    except AgentConfigError as exc:
        for problem in exc.problems:
            err.print(f"[red]error[/red]: {problem}", soft_wrap=True)
        err.print(f"{len(exc.problems)} problem(s); nothing was contacted.")
        raise typer.Exit(EXIT_INVALID) from None


@app.command()
def run(
    config: ConfigOpt = Path("/etc/bitten/cooling/agent.yaml"),
    cycles: Annotated[int | None, typer.Option(help="stop after this many poll cycles")] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO",
) -> None:
    """Run the agent: poll, alarm, act, account; serve /metrics. Stops cleanly on SIGTERM."""
    # imported here, not at the top: only this path needs it, and start-up stays light
    from bitten.cooling.agent import Agent
    from bitten.cooling.serve import serve

    cfg = _config(config)
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    agent = Agent(cfg)
    try:
        server, _thread = serve(agent.status, cfg.listen, cfg.port)
    except OSError as exc:
        agent.close()
        err.print(f"[red]error[/]: cannot listen on {cfg.listen}:{cfg.port}: {exc.strerror or exc}")
        raise typer.Exit(1) from None
    logging.getLogger("bitten.cooling").info(
        "cooling agent for %s: %d CDU(s), %d Modbus device(s), %d loop(s); metrics on http://%s:%d/metrics, "
        "status on /status; writes to the plant %s", cfg.site, len(cfg.cdus), len(cfg.modbus), len(cfg.loops),
        cfg.listen, server.server_port, "ENABLED" if cfg.writes_enabled else "disabled")

    def _stop(signum: int, frame: object) -> None:
        agent.stop.set()
        agent.wake.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        agent.run(cycles=cycles)
    finally:
        agent.close()
        server.shutdown()


@app.command()
def validate(config: Annotated[Path, typer.Argument(help="the agent's configuration file")]) -> None:
    """Validate a configuration file without contacting anything (exit 2 with every problem when invalid)."""
    cfg = _config(config)
    out.print(f"{config}: valid — {len(cfg.cdus)} CDU(s), {len(cfg.modbus)} Modbus device(s), {len(cfg.loops)} "
              f"loop(s), writes to the plant {'ENABLED' if cfg.writes_enabled else 'disabled'}")


@app.command()
def check(config: ConfigOpt = Path("/etc/bitten/cooling/agent.yaml")) -> None:
    """Validate the configuration and read every device once (no actions, no ledger); exit 1 if one fails."""
    # imported here, not at the top: only this path needs it, and start-up stays light
    from rich.table import Table

    from bitten.cooling.devices import DEVICE_TYPES

    cfg = _config(config)
    table = Table(title=f"cooling devices of {cfg.site}")
    for column in ("device", "result"):
        table.add_column(column)
    failed = 0
    for device_type in DEVICE_TYPES:
        for name, entry in sorted(device_type.entries(cfg).items()):
            reader = device_type.reader(name, entry, cfg, min(5.0, cfg.read_deadline_s))
            try:
                table.add_row(name, device_type.describe(device_type.view(name, reader.read(), cfg)))
            except Exception as exc:
                failed += 1
                table.add_row(name, f"[red]{exc}[/]")
            finally:
                reader.close()
    out.print(table)
    if failed:
        raise typer.Exit(1)


@app.command()
def setpoint(
    config: ConfigOpt = Path("/etc/bitten/cooling/agent.yaml"),
    cdu: Annotated[str | None, typer.Option(help="CDU whose supply temperature set point to write")] = None,
    supply_temperature: Annotated[float | None, typer.Option(help="degC")] = None,
    meter: Annotated[str | None, typer.Option(help="Modbus device to write")] = None,
    register: Annotated[str | None, typer.Option(help="writable register of its map")] = None,
    value: Annotated[float | None, typer.Option(help="engineering value for the register")] = None,
) -> None:
    """Write one set point: only when writes_enabled, and only within the device's allowable range."""
    # imported here, not at the top: only this path needs it, and start-up stays light
    from bitten.cooling.modbus import DeviceError, ModbusMeter, WriteRefused
    from bitten.cooling.redfish import RedfishCdu

    cfg = _config(config)
    try:
        if cdu is not None and supply_temperature is not None:
            if cdu not in cfg.cdus:
                err.print(f"[red]error[/]: no CDU {cdu!r}; known: {', '.join(cfg.cdus)}")
                raise typer.Exit(EXIT_INVALID)
            c = cfg.cdus[cdu]
            RedfishCdu(cdu, c.url, c.cdu_id, username=c.username, password=c.password, auth=c.auth,
                       ca_file=c.ca_file).set_supply_temperature(supply_temperature, writes_enabled=cfg.writes_enabled)
            out.print(f"{cdu}: supply temperature set point {supply_temperature} degC written")
        elif meter is not None and register is not None and value is not None:
            if meter not in cfg.modbus:
                err.print(f"[red]error[/]: no Modbus device {meter!r}; known: {', '.join(cfg.modbus)}")
                raise typer.Exit(EXIT_INVALID)
            d = cfg.modbus[meter]
            m = ModbusMeter(meter, d, cfg.register_maps[d.register_map])
            try:
                m.write(register, value, writes_enabled=cfg.writes_enabled)
            finally:
                m.close()
            out.print(f"{meter}: {register} = {value} written")
        else:
            err.print("[red]error[/]: give --cdu and --supply-temperature, or --meter, --register and --value")
            raise typer.Exit(EXIT_INVALID)
    except WriteRefused as exc:
        err.print(f"[red]refused[/]: {exc}")
        raise typer.Exit(EXIT_INVALID) from None
    except DeviceError as exc:
        err.print(f"[red]error[/]: {exc}")
        raise typer.Exit(1) from None


@app.command()
def resume(
    loop: Annotated[str, typer.Argument(help="the cooling loop whose nodes to resume")],
    config: ConfigOpt = Path("/etc/bitten/cooling/agent.yaml"),
) -> None:
    """After an inspection (a leak is never resumed automatically): resume the loop's nodes the agent drained.

    Reports what Slurm shows afterwards: exit 0 when no node of the loop is drained by the agent any more (a node
    that is not responding stays down until its slurmd answers, and is named), 1 when Slurm still shows one drained.
    """
    # imported here, not at the top: only this path needs it, and start-up stays light
    from bitten.cooling.nodes import HelperSlurm, LocalSlurm
    from bitten.cooling.reason import REASON
    from bitten.core.scontrol import ScontrolError

    cfg = _config(config)
    if loop not in cfg.loops:
        err.print(f"[red]error[/]: no loop {loop!r}; known: {', '.join(cfg.loops)}")
        raise typer.Exit(EXIT_INVALID)
    names = [n.name for n in cfg.loops[loop].nodes]
    slurm = HelperSlurm(cfg.helper, cfg.scontrol) if cfg.helper else LocalSlurm(cfg.scontrol)
    try:
        states = slurm.node_states(names)
        ours = [n for n in names if n in states and states[n].drained and REASON.owns(states[n])]
        after = slurm.resume(ours) if ours else {}
    except ScontrolError as exc:
        err.print(f"[red]error[/]: {exc}")
        raise typer.Exit(1) from None
    still = [n for n in ours if n not in after or after[n].drained]
    resumed = [n for n in ours if n not in still]
    down = [n for n in resumed if after[n].down]
    out.print(f"resumed {', '.join(resumed) or 'nothing (no node of the loop was drained by the agent)'}")
    if down:
        out.print(f"not responding, back when its slurmd answers: {', '.join(f'{n} {after[n].state}' for n in down)}")
    if still:
        err.print("[red]error[/]: Slurm still shows drained: "
                  + ", ".join(f"{n} {after[n].state}" if n in after else f"{n} (not shown)" for n in still))
        raise typer.Exit(1)


@energy_app.command()
def report(
    period: Annotated[str, typer.Option(help="2026, 2026-03, or 2026-01-01..2026-07-01 (UTC, end exclusive)")],
    config: ConfigOpt = Path("/etc/bitten/cooling/agent.yaml"),
    ledger: Annotated[Path | None, typer.Option(help="ledger file (default: the config's state_dir)")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="write report.json, report.csv and "
                                                 "report.html here")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json or csv on stdout when --out is not given")] = "json",
) -> None:
    """PUE, ERF, ERE, REF, WUE and the EU data-centre report fields, each with its provenance."""
    # imported here, not at the top: only this path needs it, and start-up stays light
    from bitten.cooling.ledger import Ledger
    from bitten.cooling.report import ReportError, build_report, parse_period, to_csv, to_html, to_json

    cfg = _config(config)
    try:
        start, end = parse_period(period)
    except ReportError as exc:
        err.print(f"[red]error[/]: --period {period}: {exc}")
        raise typer.Exit(EXIT_INVALID) from None
    path = ledger or cfg.ledger_path
    if not path.exists():
        err.print(f"[red]error[/]: no ledger at {path} (has the agent run? give --ledger)")
        raise typer.Exit(EXIT_INVALID)
    book = Ledger(path, cfg.ledger.max_gap_s)
    try:
        rep = build_report(cfg, book, start, end, period)
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "report.json").write_text(to_json(rep))
            (out_dir / "report.csv").write_text(to_csv(rep))
            (out_dir / "report.html").write_text(to_html(rep, book))
            out.print(f"wrote report.json, report.csv, report.html to {out_dir}")
        elif fmt == "csv":
            sys.stdout.write(to_csv(rep))
        else:
            sys.stdout.write(to_json(rep))
    finally:
        book.close()


def main() -> None:
    """`bitten-cooling`: the same commands for the agent host, whose virtualenv holds only the agent's own
    dependencies (the full `bitten` command also loads the hardware, UCloud and lab front ends)."""
    agent = typer.Typer(no_args_is_help=True, help=app.info.help, pretty_exceptions_enable=False)
    agent.registered_commands.extend(app.registered_commands)
    agent.add_typer(energy_app, name="energy", help="energy reports: PUE, ERF, ERE, REF, WUE, the EU report")
    agent(prog_name="bitten-cooling")
