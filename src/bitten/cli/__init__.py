"""The `bitten` command line: thin front end over the library."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bitten.cli.common import InventoryArg, VaultOpt, err, load_or_exit, out

app = typer.Typer(help="Build and run an energy-aware AI supercomputer from one inventory.",
                  no_args_is_help=True, pretty_exceptions_enable=False)


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

    from bitten.capabilities import FILES, render_tree

    site = load_or_exit(inventory, vault_password_file)
    total = sum(len(spec.hosts(site)) for spec in FILES)
    with Progress(console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task("rendering", total=total)
        result = render_tree(site, out_dir, progress=lambda n: progress.advance(task, n))
    out.print(f"wrote {result.files} files for {result.hosts} hosts ({result.unique} distinct) to {out_dir}")


def _register_subcommands() -> None:
    from bitten.cli.cooling import cooling_app, energy_app
    from bitten.cli.hardware import app as hardware_app
    from bitten.cli.lab import app as lab_app
    from bitten.cli.provision import app as provision_app
    from bitten.cli.ucloud import app as ucloud_app

    app.add_typer(lab_app, name="lab", help="the whole site on this machine: containers and emulators")
    app.add_typer(hardware_app, name="hardware", help="BMC state through Redfish: plan, apply, inventory")
    app.add_typer(ucloud_app, name="ucloud", help="UCloud: registration check, products, IM test double")
    app.add_typer(cooling_app, name="cooling", help="the cooling agent: CDUs, meters, alarms into Slurm, the ledger")
    app.add_typer(energy_app, name="energy", help="energy reports: PUE, ERF, ERE, REF, WUE, the EU report")
    app.add_typer(provision_app, name="provision", help="provisioning: the OS images nodes boot over PXE")


_register_subcommands()


def main() -> None:
    app(prog_name="bitten")


if __name__ == "__main__":
    main()
