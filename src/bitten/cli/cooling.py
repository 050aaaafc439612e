"""`bitten cooling ...` and `bitten energy ...`: the agent's own commands (bitten.cooling.cli, what bitten-cooling
offers on the agent host) plus, in the full command line, the lab's stand-ins and its leak drill."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bitten.cli.common import err, load_or_exit, out
from bitten.cooling.cli import app as agent_app
from bitten.cooling.cli import energy_app
from bitten.lab.commands import app as standins_app
from bitten.site.problems import EXIT_INVALID

cooling_app = typer.Typer(no_args_is_help=True, help=agent_app.info.help)
cooling_app.registered_commands.extend([*agent_app.registered_commands, *standins_app.registered_commands])

__all__ = ["cooling_app", "energy_app"]


@cooling_app.command()
def leak(
    inventory: Annotated[Path, typer.Argument(help="the lab inventory")] = Path("inventory/lab"),
    loop: Annotated[str | None, typer.Option(help="the cooling loop (default: the first)")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="clear the simulated faults instead")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the drain")] = 120.0,
) -> None:
    """Lab drill: a simulated leak on the loop's CDU, then the loop's nodes as Slurm shows them (drained)."""
    from bitten.lab.lab import Lab, LabError
    from bitten.lab.layers.cooling import leak as run_leak

    try:
        lab = Lab(inventory, load_or_exit([inventory]), out)
    except LabError as exc:
        err.print(f"[red]error[/]: {exc}")
        raise typer.Exit(EXIT_INVALID) from None
    raise typer.Exit(run_leak(lab, loop, clear, timeout))


