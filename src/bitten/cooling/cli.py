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
    from bitten.cooling.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
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
    from prometheus_client import CollectorRegistry, start_http_server

    from bitten.cooling.agent import Agent
    from bitten.cooling.metrics import AgentCollector

    cfg = _config(config)
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    agent = Agent(cfg)
    registry = CollectorRegistry()
    registry.register(AgentCollector(agent))
    server, _thread = start_http_server(cfg.port, addr=cfg.listen, registry=registry)
    logging.getLogger("bitten.cooling").info(
        "cooling agent for %s: %d CDU(s), %d Modbus device(s), %d loop(s); metrics on http://%s:%d/metrics; "
        "writes to the plant %s", cfg.site, len(cfg.cdus), len(cfg.modbus), len(cfg.loops), cfg.listen,
        server.server_port, "ENABLED" if cfg.writes_enabled else "disabled")

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
    from rich.table import Table

    from bitten.cooling.agent import cdu_view, meter_view
    from bitten.cooling.modbus import ModbusMeter
    from bitten.cooling.redfish import RedfishCdu

    cfg = _config(config)
    table = Table(title=f"cooling devices of {cfg.site}")
    for column in ("device", "result"):
        table.add_column(column)
    failed = 0
    for name, c in sorted(cfg.cdus.items()):
        try:
            view = cdu_view(RedfishCdu(name, c.url, c.cdu_id, username=c.username, password=c.password,
                                       auth=c.auth, ca_file=c.ca_file).read(),
                            cfg.coolants.get(c.coolant) if c.coolant else None)
            parts = [f"{x.side}: {x.flow_lpm} L/min, dT {x.delta_k} K, heat "
                     f"{x.heat_computed_kw and round(x.heat_computed_kw, 2)} kW computed / {x.heat_reported_kw} kW "
                     "reported" for x in view.connectors]
            table.add_row(name, f"health {view.reading.health}; " + "; ".join(parts))
        except Exception as exc:
            failed += 1
            table.add_row(name, f"[red]{exc}[/]")
    for name, d in sorted(cfg.modbus.items()):
        meter = ModbusMeter(name, d, cfg.register_maps[d.register_map])
        try:
            mview = meter_view(meter.read())
            table.add_row(name, ", ".join(f"{k}={p.value:g} {p.unit}" if p.value is not None else f"{k}=invalid"
                                          for k, p in mview.reading.points.items()))
        except Exception as exc:
            failed += 1
            table.add_row(name, f"[red]{exc}[/]")
        finally:
            meter.close()
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
    """After an inspection (a leak is never resumed automatically): resume the loop's nodes the agent drained."""
    from bitten.cooling.slurm import Scontrol, SlurmError

    cfg = _config(config)
    if loop not in cfg.loops:
        err.print(f"[red]error[/]: no loop {loop!r}; known: {', '.join(cfg.loops)}")
        raise typer.Exit(EXIT_INVALID)
    names = [n.name for n in cfg.loops[loop].nodes]
    slurm = Scontrol()
    try:
        states = slurm.node_states(names)
        ours = [n for n in names if n in states and states[n].drained and states[n].ours]
        if ours:
            slurm.resume(ours)
    except SlurmError as exc:
        err.print(f"[red]error[/]: {exc}")
        raise typer.Exit(1) from None
    out.print(f"resumed {', '.join(ours) or 'nothing (no node of the loop was drained by the agent)'}")


@app.command()
def mockup(
    directory: Annotated[Path, typer.Argument(help="a Redfish mockup directory (with index.json)")],
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    cert: Annotated[Path | None, typer.Option(help="TLS certificate (PEM); with --key serves https")] = None,
    key: Annotated[Path | None, typer.Option(help="TLS key (PEM)")] = None,
) -> None:
    """Serve a DMTF Redfish mockup read-only (the tests' and Molecule's stand-in for a real CDU)."""
    from bitten.cooling.mockup import serve_mockup

    server = serve_mockup(directory, host, port, certfile=str(cert) if cert else None,
                          keyfile=str(key) if key else None)
    out.print(f"serving {directory} read-only on {host}:{server.server_address[1]}")
    signal.signal(signal.SIGTERM, lambda *_: server.shutdown())
    server.serve_forever()


@app.command()
def simulate(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="an agent configuration to simulate")] = None,
    inventory: Annotated[Path | None, typer.Option(help="or a site inventory (its agent config is rendered)")] = None,
    bind: Annotated[str, typer.Option("--host", help="address to bind")] = "127.0.0.1",
    advertised: Annotated[str | None, typer.Option(help="the host name the config uses for this plant "
                                                   "(default: --host)")] = None,
    cdu_port: Annotated[int, typer.Option(help="port of the simulated Redfish CDU(s)")] = 8444,
    modbus_port: Annotated[int, typer.Option(help="port of the simulated Modbus meters")] = 5020,
    tls_dir: Annotated[Path | None, typer.Option(help="CA and certificate for https CDUs (created if missing)")] = None,
    load: Annotated[str, typer.Option(help="constant:KW, sine:BASE:AMPLITUDE[:PERIOD_S] or slurm:CONTAINER")] =
        "sine:40:15:900",
) -> None:
    """The lab's cooling plant: a Redfish CDU and Modbus meters whose readings follow a load."""
    from bitten.cooling.plant import build_plant, parse_load, run_plant

    logging.basicConfig(level="INFO", stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    cfg = _config(config) if config else _config_from_inventory(inventory)
    try:
        source = parse_load(load, cfg)
        plant = build_plant(cfg, source, bind=bind, cdu_port=cdu_port, modbus_port=modbus_port, tls_dir=tls_dir,
                            advertised_host=advertised)
    except ValueError as exc:
        err.print(f"[red]error[/]: {exc}")
        raise typer.Exit(EXIT_INVALID) from None
    if plant.cdu_server is None and plant.modbus is None:
        err.print(f"[red]error[/]: no CDU at {advertised or bind}:{cdu_port} and no meter at {advertised or bind}:"
                  f"{modbus_port} in the configuration")
        raise typer.Exit(EXIT_INVALID)
    out.print(f"cooling plant on {bind}: CDU port {cdu_port if plant.cdu_server else '-'}, Modbus port "
              f"{modbus_port if plant.modbus else '-'} (units {sorted(plant.roles)}), load {load}"
              + (f", CA {plant.ca_file}" if plant.ca_file else ""))
    signal.signal(signal.SIGTERM, lambda *_: plant.stop.set())
    signal.signal(signal.SIGINT, lambda *_: plant.stop.set())
    run_plant(plant, source)


def _config_from_inventory(inventory: Path | None):  # type: ignore[no-untyped-def]
    import yaml

    from bitten.cli import load_or_exit
    from bitten.cooling.config import parse_config
    from bitten.render import render_file

    if inventory is None:
        err.print("[red]error[/]: give --config or --inventory")
        raise typer.Exit(EXIT_INVALID)
    site = load_or_exit([inventory])
    if not site.cooling_agent_hosts:
        err.print(f"[red]error[/]: {inventory} has no cooling devices (bitten_cooling)")
        raise typer.Exit(EXIT_INVALID)
    text = render_file(site, "/etc/bitten/cooling/agent.yaml", site.cooling_agent_hosts[0],
                       _placeholder_secrets(site))
    return parse_config(yaml.safe_load(text), str(inventory))


def _placeholder_secrets(site) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A simulator needs no real secrets: every CDU password is the placeholder text itself."""
    return {f"cooling_cdu_{name}_password": f"<secret:cooling_cdu_{name}_password>" for name in site.cooling.cdus}


@app.command()
def leak(
    inventory: Annotated[Path, typer.Argument(help="the lab inventory")] = Path("inventory/lab"),
    loop: Annotated[str | None, typer.Option(help="the cooling loop (default: the first)")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="clear the simulated faults instead")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the drain")] = 120.0,
) -> None:
    """Lab drill: a simulated leak on the loop's CDU, then the loop's nodes as Slurm shows them (drained)."""
    from bitten.cli import load_or_exit
    from bitten.cooling.lab import leak as run_leak
    from bitten.lab.lab import Lab, LabError

    try:
        lab = Lab(inventory, load_or_exit([inventory]), out)
    except LabError as exc:
        err.print(f"[red]error[/]: {exc}")
        raise typer.Exit(EXIT_INVALID) from None
    raise typer.Exit(run_leak(lab, loop, clear, timeout))


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


def register(parent: typer.Typer) -> None:
    """Add `cooling` and `energy` to the bitten command line."""
    parent.add_typer(app, name="cooling", help="the cooling agent: CDUs, meters, alarms into Slurm, the ledger")
    parent.add_typer(energy_app, name="energy", help="energy reports: PUE, ERF, ERE, REF, WUE, the EU report")


def main() -> None:
    """`bitten-cooling`: the same commands for the agent host, whose virtualenv holds only the agent's own
    dependencies (the full `bitten` command also loads the hardware, UCloud and lab front ends)."""
    agent = typer.Typer(no_args_is_help=True, help=app.info.help, pretty_exceptions_enable=False)
    agent.registered_commands.extend(app.registered_commands)
    agent.add_typer(energy_app, name="energy", help="energy reports: PUE, ERF, ERE, REF, WUE, the EU report")
    agent(prog_name="bitten-cooling")
