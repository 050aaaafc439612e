"""The `bitten` command line: thin front end over the library."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bitten.site import EXIT_INVALID, Site, SiteError, load_site

app = typer.Typer(help="Build and run an energy-aware AI supercomputer from one inventory.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
err = Console(stderr=True, highlight=False)
out = Console(highlight=False)

InventoryArg = Annotated[list[Path], typer.Argument(help="inventory directory or file(s), as for ansible -i")]
VaultOpt = Annotated[str | None, typer.Option("--vault-password-file", help="for vaulted inventory variables",
                                              envvar="ANSIBLE_VAULT_PASSWORD_FILE")]


def load_or_exit(inventory: list[Path], vault_password_file: str | None = None) -> Site:
    """Load and validate a site; on problems print them all and exit 2 before anything else happens."""
    try:
        return load_site(inventory, vault_password_file=vault_password_file)
    except SiteError as exc:
        for problem in exc.problems:
            err.print(f"[red]error[/red]: {problem}", soft_wrap=True, markup=True)
        err.print(f"{len(exc.problems)} problem(s); nothing was written or contacted.")
        raise typer.Exit(EXIT_INVALID) from None


@app.command()
def validate(inventory: InventoryArg, vault_password_file: VaultOpt = None) -> None:
    """Check an inventory: every problem at once, each naming file, host and field. Exit 2 when invalid."""
    site = load_or_exit(inventory, vault_password_file)
    gpus = sum(p.gpu.count for h in site.compute_nodes if (p := site.profile_of(h)) and p.gpu)
    out.print(f"{site.info.name}: valid — {len(site.nodes)} hosts, {len(site.compute_nodes)} compute nodes, "
              f"{gpus} GPUs, {len(site.partitions)} partitions, {len(site.cooling.loops)} cooling loops")
    if site.assumptions:
        out.print(f"{len(site.assumptions)} assumption(s) recorded in bitten_assumptions")


@app.command()
def render(
    inventory: InventoryArg,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="directory to write DIR/<host>/<path> into")],
    vault_password_file: VaultOpt = None,
) -> None:
    """Write every generated file per host, deterministically; secrets appear as named placeholders."""
    from rich.progress import Progress

    from bitten.files import FILES
    from bitten.render import render_tree

    site = load_or_exit(inventory, vault_password_file)
    total = sum(len(spec.hosts(site)) for spec in FILES)
    with Progress(console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task("rendering", total=total)
        result = render_tree(site, out_dir, progress=lambda n: progress.advance(task, n))
    out.print(f"wrote {result.files} files for {result.hosts} hosts ({result.unique} distinct) to {out_dir}")


def _register_subcommands() -> None:
    from bitten.lab.cli import app as lab_app
    from bitten.provision.cli import app as provision_app
    from bitten.redfish.cli import app as hardware_app
    from bitten.ucloud.cli import app as ucloud_app

    app.add_typer(lab_app, name="lab", help="the whole site on this machine: containers and emulators")
    app.add_typer(hardware_app, name="hardware", help="BMC state through Redfish: plan, apply, inventory")
    app.add_typer(ucloud_app, name="ucloud", help="UCloud: registration check, products, IM test double")
    app.add_typer(provision_app, name="provision", help="provisioning: the OS images nodes boot over PXE")
    from bitten.cooling.cli import register as register_cooling

    register_cooling(app)


_register_subcommands()


def main() -> None:
    app(prog_name="bitten")


if __name__ == "__main__":
    main()
