"""The lab's stand-ins as commands: a read-only DMTF Redfish mockup server and the simulated cooling plant.

`bitten cooling mockup|simulate` in the full command line, and ``python -m bitten.lab mockup|simulate`` where only
the agent's own installation and the lab wing are present (the cooling_agent Molecule scenario's plant container).
"""

from __future__ import annotations

import errno
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from bitten.cooling.config import AgentConfig, AgentConfigError, load_config
from bitten.site.problems import EXIT_INVALID

if TYPE_CHECKING:
    from bitten.site import Site

app = typer.Typer(no_args_is_help=True, help="the lab's stand-ins: a Redfish mockup server, the cooling plant")
err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def _config(path: Path) -> AgentConfig:
    try:
        return load_config(path)
    except AgentConfigError as exc:
        for problem in exc.problems:
            err.print(f"[red]error[/red]: {problem}", soft_wrap=True)
        raise typer.Exit(EXIT_INVALID) from None


@app.command()
def mockup(
    directory: Annotated[Path, typer.Argument(help="a Redfish mockup directory (with index.json)")],
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    cert: Annotated[Path | None, typer.Option(help="TLS certificate (PEM); with --key serves https")] = None,
    key: Annotated[Path | None, typer.Option(help="TLS key (PEM)")] = None,
) -> None:
    """Serve a DMTF Redfish mockup read-only (the tests' and Molecule's stand-in for a real CDU). Stops on SIGTERM
    or SIGINT within a second."""
    from bitten.lab.doubles.mockup import serve_mockup
    from bitten.lab.httpserve import in_thread

    try:
        server = serve_mockup(directory, host, port, certfile=str(cert) if cert else None,
                              keyfile=str(key) if key else None)
    except (OSError, FileNotFoundError) as exc:
        _cannot_serve(host, port, exc)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())  # the handler only sets the event: shutdown() needs another thread
    thread = in_thread(server)
    out.print(f"serving {directory} read-only on {host}:{server.server_address[1]}")
    while not stop.wait(0.2) and thread.is_alive():
        pass
    server.shutdown()
    server.server_close()


def _cannot_serve(host: str, port: int, exc: BaseException) -> NoReturn:
    """One line, no traceback: the port is taken, or the address or the directory is wrong."""
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        err.print(f"[red]error[/]: {host}:{port} is in use by another program; stop it or give another --port",
                  soft_wrap=True)
    elif isinstance(exc, OSError) and exc.errno == errno.EADDRNOTAVAIL:
        err.print(f"[red]error[/]: {host} is not an address of this machine; give another --host", soft_wrap=True)
    else:
        err.print(f"[red]error[/]: cannot serve on {host}:{port}: {exc}", soft_wrap=True)
    raise typer.Exit(1)


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
    from bitten.lab.doubles.plant import build_plant, parse_load, run_plant

    logging.basicConfig(level="INFO", stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    cfg = _config(config) if config else _config_from_inventory(inventory)
    try:
        source = parse_load(load, cfg)
        plant = build_plant(cfg, source, bind=bind, cdu_port=cdu_port, modbus_port=modbus_port, tls_dir=tls_dir,
                            advertised_host=advertised)
    except ValueError as exc:
        err.print(f"[red]error[/]: {exc}")
        raise typer.Exit(EXIT_INVALID) from None
    except OSError as exc:
        _cannot_serve(bind, cdu_port, exc)
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


def _config_from_inventory(inventory: Path | None) -> AgentConfig:
    import yaml

    from bitten.capabilities import load_site, render_file
    from bitten.cooling.config import parse_config
    from bitten.site import SiteError

    if inventory is None:
        err.print("[red]error[/]: give --config or --inventory")
        raise typer.Exit(EXIT_INVALID)
    try:
        site = load_site([inventory])
    except SiteError as exc:
        err.print(str(exc), soft_wrap=True)
        raise typer.Exit(EXIT_INVALID) from None
    if not site.cooling_agent_hosts:
        err.print(f"[red]error[/]: {inventory} has no cooling devices (bitten_cooling)")
        raise typer.Exit(EXIT_INVALID)
    text = render_file(site, "/etc/bitten/cooling/agent.yaml", site.cooling_agent_hosts[0],
                       _placeholder_secrets(site))
    return parse_config(yaml.safe_load(text), str(inventory))


def _placeholder_secrets(site: Site) -> dict[str, str]:
    """A simulator needs no real secrets: every CDU password is the placeholder text itself."""
    return {f"cooling_cdu_{name}_password": f"<secret:cooling_cdu_{name}_password>" for name in site.cooling.cdus}
