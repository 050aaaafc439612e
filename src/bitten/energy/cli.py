"""`bitten-energy`: the energy controller's own commands on its host (the role installs them without the rest of
the bitten command line): run the controller, switch its mode, read its decisions."""

from __future__ import annotations

import json
import logging
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from bitten.energy.config import DEFAULT_PATH, ConfigError, ControllerConfig, load_config

app = typer.Typer(no_args_is_help=True, help="the energy controller: signals, policies, interlocks, actuators",
                  pretty_exceptions_enable=False)
ConfigOpt = Annotated[Path, typer.Option("--config", help="the controller's configuration (generated)")]


def _config(path: Path):  # type: ignore[no-untyped-def]
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        raise typer.Exit(2) from None


@app.command()
def control(config: ConfigOpt = Path(DEFAULT_PATH),
            once: Annotated[bool, typer.Option("--once", help="one cycle, then exit")] = False) -> None:
    """Run the controller (shadow mode unless the site or an operator says act); /metrics on its port."""
    # imported here, not at the top: only this path needs it, and start-up stays light
    from prometheus_client import start_http_server
    from prometheus_client.registry import CollectorRegistry

    from bitten.energy.controller import Controller
    from bitten.energy.metrics import ControllerCollector

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = _config(config)
    ctl = Controller(cfg)
    if once:
        ctl.run(cycles=1)
        ctl.close()
        return
    registry = CollectorRegistry()
    registry.register(ControllerCollector(ctl))
    start_http_server(cfg.port, addr=cfg.listen, registry=registry)
    if cfg.statements is not None:
        _statements(cfg)
    signal.signal(signal.SIGTERM, lambda *_: ctl.stop.set())
    logging.getLogger("bitten.energy").info("controller for %s in %s mode; metrics on %s:%d", cfg.site, ctl.mode(),
                                            cfg.listen, cfg.port)
    try:
        ctl.run()
    finally:
        ctl.close()


def _statements(cfg: ControllerConfig) -> None:
    """Serve the users' own statements beside the metrics (bitten.energy.statements)."""
    # imported here, not at the top: only this path needs it, and start-up stays light
    from functools import partial

    from bitten.energy import statements as st
    from bitten.energy.attribution import NodeInfo

    sc = cfg.statements
    assert sc is not None
    service = st.Statements({n: NodeInfo(e.gpus, e.threads, e.nominal_w, e.plugin) for n, e in sc.nodes.items()},
                            [cfg.nodes_ledger_path, *(Path(p) for p in sc.ledgers)], cfg.cache_path,
                            sc.categories, sc.sacct)
    server = st.serve(service, cfg.listen, sc.port, decode=partial(st.unmunge, argv=sc.unmunge))
    st.in_thread(server)
    logging.getLogger("bitten.energy").info("users' statements on %s:%d%s", cfg.listen, sc.port, st.PATH)


@app.command()
def validate(path: Annotated[Path, typer.Argument(help="a controller configuration file")]) -> None:
    """Check a configuration file (the role validates the generated file with this before installing it)."""
    cfg = _config(path)
    print(f"{path}: valid -- {len(cfg.policies)} policies, mode {cfg.mode}")


@app.command()
def mode(which: Annotated[str, typer.Argument(help="act, shadow, or site (the inventory's controller.mode)")],
         config: ConfigOpt = Path(DEFAULT_PATH)) -> None:
    """Override the controller's mode from its next cycle on (the drill switches to act, then back)."""
    cfg = _config(config)
    if which not in ("act", "shadow", "site"):
        raise typer.BadParameter("act, shadow or site")
    if which == "site":
        cfg.mode_path.unlink(missing_ok=True)
    else:
        cfg.mode_path.parent.mkdir(parents=True, exist_ok=True)
        cfg.mode_path.write_text(which + "\n")
    print(f"mode: {cfg.mode if which == 'site' else which}" + (" (the site's)" if which == "site" else " (override)"))


@app.command()
def decisions(config: ConfigOpt = Path(DEFAULT_PATH), last: int = 20,
              as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The controller's last decisions: what, why, on which inputs, what each actuator reported."""
    # imported here, not at the top: only this path needs it, and start-up stays light
    from bitten.energy.controller import read_decisions

    cfg = _config(config)
    entries = read_decisions(cfg.decisions_path, last)
    if as_json:
        print(json.dumps(entries, indent=2))
        return

    for e in entries:
        when = datetime.fromtimestamp(e["time"], UTC).strftime("%Y-%m-%d %H:%M:%S")
        acts = "; ".join(f"{a['actuator']} {a['target']}: asked {a['requested']}, reported {a['reported']}"
                         + (f" ({a['error']})" if a.get("error") else "") for a in e.get("actuators", []))
        print(f"{when} [{e['mode']}] {e['subject']}: {e['decision']}" + (f" -- {e['rule']}" if e.get("rule") else "")
              + (f" => {acts}" if acts else ""))


def main() -> None:
    app(prog_name="bitten-energy")


if __name__ == "__main__":
    main()
