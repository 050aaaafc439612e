"""`bitten lab ...`: build, run and remove the lab."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bitten.cli.common import load_or_exit
from bitten.lab.image import RELEASES, Recipe, RolesImage, ensure_image, ensure_roles_image, role_packages
from bitten.lab.lab import Lab

app = typer.Typer(no_args_is_help=True)
console = Console(highlight=False)

LabInventory = Annotated[Path, typer.Argument(help="the lab inventory")]


def _lab(inventory: Path) -> Lab:
    # imported here, not at the top: only this path needs it, and start-up stays light
    from bitten.lab.lab import LabError

    try:
        return Lab(inventory, load_or_exit([inventory]), console)
    except LabError as exc:
        console.print(f"[red]error[/]: {exc} (fix: give the lab inventory, e.g. inventory/lab)", soft_wrap=True)
        raise typer.Exit(2) from None


@app.command()
def image(
    release: Annotated[list[str], typer.Option("--release", help=f"one of {', '.join(RELEASES)}")] = ["trixie"],  # noqa: B006
    roles: Annotated[Path | None, typer.Option(
        "--roles", help="also the Molecule image: the base image with the packages these roles install")] = None,
) -> None:
    """Build the node base image(s) from Debian's mirror unless the current recipe's image exists."""
    for name in release:
        if name not in RELEASES:
            console.print(f"[red]error[/]: --release {name}: expected one of {', '.join(RELEASES)}")
            raise typer.Exit(2)
        recipe = Recipe(name)
        with console.status(f"base image {name}") as status:

            def log(line: str, release: str = name) -> None:
                status.update(f"base image {release}: {line}")

            ref, built = ensure_image(recipe, log=log)
        console.print(f"[green]✓[/] {ref} -> {recipe.stable_ref} ({'built' if built else 'cached'})")
        if roles is None:
            continue
        image = RolesImage(name, role_packages(roles))
        with console.status(f"roles image {name}") as status:
            ref, built = ensure_roles_image(image, log=lambda line: status.update(f"roles image: {line}"))
        console.print(f"[green]✓[/] {ref} -> {image.stable_ref} ({'built' if built else 'cached'})")


@app.command()
def up(
    inventory: LabInventory = Path("inventory/lab"),
    playbook: Annotated[Path, typer.Option(help="playbook to converge the lab with")] = Path("playbooks/site.yml"),
    no_playbook: Annotated[bool, typer.Option("--no-playbook", help="only containers and services")] = False,
) -> None:
    """Create the lab (image, network, containers, emulators), run the playbooks over SSH, print a summary."""
    # imported here, not at the top: only this path needs it, and start-up stays light
    from bitten.lab.lab import LabError

    lab = _lab(inventory)
    try:
        lab.up(None if no_playbook else playbook)
    except LabError as exc:
        console.print(f"[red]error[/]: {exc}")
        raise typer.Exit(1) from None


@app.command()
def down(inventory: LabInventory = Path("inventory/lab")) -> None:
    """Remove every container, network and volume the lab created, and stop its services."""
    removed = _lab(inventory).down()
    for kind, names in removed.items():
        console.print(f"removed {len(names)} {kind}" + (f": {', '.join(names)}" if names else ""))
