"""The `bitten` command line: thin front end over the library."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from bitten.cli.common import InventoryArg, VaultOpt, err, load_or_exit, out
from bitten.site import EXIT_INVALID

#: subcommand groups: name -> (module, attribute, help). Each is imported only when it runs (or for --help), so that
#: `bitten validate` and `bitten render` do not pay for sushy, the cooling agent or the lab.
_GROUPS: dict[str, tuple[str, str, str]] = {
    "lab": ("bitten.cli.lab", "app", "the whole site on this machine: containers and emulators"),
    "hardware": ("bitten.cli.hardware", "app", "BMC state through Redfish: plan, apply, inventory"),
    "ucloud": ("bitten.cli.ucloud", "app", "UCloud: registration check, products, IM test double"),
    "fabric": ("bitten.cli.fabric", "app", "InfiniBand: the discovered fabric against the cabling plan"),
    "cooling": ("bitten.cli.cooling", "cooling_app",
                "the cooling agent: CDUs, meters, alarms into Slurm, the ledger"),
    "energy": ("bitten.cli.energy", "app",
               "energy: the ledger's reports, the what-if simulator, energy per job, the energy controller"),
    "provision": ("bitten.cli.provision", "app", "provisioning: the OS images nodes boot over PXE, boot status"),
}


class _LazyGroups(TyperGroup):
    """The root command: its subcommand groups are imported when they are asked for."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(name for name in _GROUPS if name not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in _GROUPS and cmd_name not in self.commands:
            module, attribute, help_text = _GROUPS[cmd_name]
            holder = typer.Typer()
            holder.add_typer(getattr(importlib.import_module(module), attribute), name=cmd_name, help=help_text)
            group = typer.main.get_command(holder)
            self.add_command(group.commands[cmd_name], cmd_name)  # type: ignore[attr-defined]
        return super().get_command(ctx, cmd_name)


app = typer.Typer(help="Build and run an energy-aware AI supercomputer from one inventory.",
                  no_args_is_help=True, pretty_exceptions_enable=False, cls=_LazyGroups)


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
    """Write every generated file once per distinct content, with the hosts that get it (manifest.tsv); secrets
    appear as named placeholders."""
    # imported here, not at the top: only this path needs it, and start-up stays light
    from rich.progress import Progress

    from bitten.capabilities import FILES, render_tree
    from bitten.core.files import RenderRefused

    site = load_or_exit(inventory, vault_password_file)
    total = sum(len(spec.hosts(site)) for spec in FILES)
    try:
        with Progress(console=err, transient=True, disable=not err.is_terminal) as progress:
            task = progress.add_task("rendering", total=total)
            result = render_tree(site, out_dir, progress=lambda n: progress.advance(task, n))
    except RenderRefused as exc:
        err.print(f"[red]error[/red]: {escape(str(exc))}; nothing was written")
        raise typer.Exit(EXIT_INVALID) from None
    out.print(f"{result.files} files for {result.hosts} hosts, {result.unique} distinct, written once each to "
              f"{out_dir} (see {out_dir}/manifest.tsv)")


def main() -> None:
    app(prog_name="bitten")


if __name__ == "__main__":
    main()
