"""What every `bitten` subcommand shares: the consoles, the inventory arguments, and loading a valid site."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from bitten.capabilities import load_site
from bitten.site import EXIT_INVALID, Site, SiteError

err = Console(stderr=True, highlight=False, emoji=False)
out = Console(highlight=False, emoji=False)

InventoryArg = Annotated[list[Path], typer.Argument(help="inventory directory or file(s), as for ansible -i")]
VaultOpt = Annotated[str | None, typer.Option("--vault-password-file", help="for vaulted inventory variables",
                                              envvar="ANSIBLE_VAULT_PASSWORD_FILE")]


def load_or_exit(inventory: list[Path], vault_password_file: str | None = None) -> Site:
    """Load and validate a site; on problems print them all and exit 2 before anything else happens."""
    try:
        return load_site(inventory, vault_password_file=vault_password_file)
    except SiteError as exc:
        for problem in exc.problems:
            err.print(f"[red]error[/red]: {escape(str(problem))}", soft_wrap=True, markup=True)
        err.print(f"{len(exc.problems)} problem(s); nothing was written or contacted.")
        raise typer.Exit(EXIT_INVALID) from None
