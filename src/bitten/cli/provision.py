"""`bitten provision ...`: the images a site boots, and what the provisioner saw of each node's boot."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(no_args_is_help=True)
console = Console(highlight=False)

InventoryArg = Annotated[list[Path], typer.Argument(help="inventory directory or file(s), as for ansible -i")]


@app.command("images")
def images(
    inventory: InventoryArg,
    build: Annotated[bool, typer.Option("--build", help="build every image that is not in the cache")] = False,
    name: Annotated[list[str] | None, typer.Option("--image", help="only this image (repeatable)")] = None,
) -> None:
    """The site's images (recipe hash, cached or not); with --build, build the missing ones (needs root)."""
    from bitten.cli.common import load_or_exit
    from bitten.provision import image as images_
    from bitten.provision.nodes import boot_nodes, recipes

    site = load_or_exit(inventory)
    wanted = recipes(site)
    unknown = sorted(set(name or ()) - set(wanted))
    if unknown:
        console.print(f"[red]error[/]: --image {', '.join(unknown)}: the site defines {', '.join(wanted) or 'none'}")
        raise typer.Exit(2)
    selected = {k: v for k, v in wanted.items() if not name or k in name}
    table = Table(title=f"images of {site.info.name} (cache {images_.cache_dir()})")
    for column in ("image", "id", "release", "nodes", "state"):
        table.add_column(column)
    failed = 0
    for image_name, recipe in selected.items():
        nodes = [n.name for n in boot_nodes(site).values() if n.image == image_name]
        state = "cached" if images_.find(recipe) else "not built"
        if build and images_.find(recipe) is None:
            try:
                with console.status(f"building {recipe.id}") as status:

                    def log(line: str, ident: str = recipe.id) -> None:
                        status.update(f"{ident}: {line}")

                    images_.ensure(recipe, log=log)
                state = "built"
            except images_.ImageError as exc:
                console.print(f"[red]error[/]: {recipe.id}: {exc}", soft_wrap=True)
                state, failed = "FAILED", failed + 1
        table.add_row(image_name, recipe.id, recipe.image.release, str(len(nodes)), state)
    console.print(table)
    if failed:
        raise typer.Exit(1)


@app.command("status")
def status(
    inventory: InventoryArg,
    url: Annotated[str | None, typer.Option("--url", help="the provisioner's status URL (default: the site's)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print the provisioner's record as JSON")] = False,
) -> None:
    """What the provisioner saw of each node's boot: lease, last report, image, and reboots that are pending."""
    import json
    import urllib.error

    from bitten.cli.common import load_or_exit
    from bitten.provision.boot import http_status
    from bitten.provision.nodes import boot_nodes, http_base
    from bitten.provision.status import node_states

    site = load_or_exit(inventory)
    if site.provision is None:
        console.print(f"{site.info.name} provisions nothing (no bitten_provision)")
        raise typer.Exit(0)
    try:
        record = dict(http_status(url or f"{http_base(site)}/status")())
    except (OSError, ValueError, urllib.error.URLError) as exc:
        console.print(f"[red]error[/]: the provisioner's status could not be read: {exc}")
        raise typer.Exit(4) from None
    if json_out:
        print(json.dumps(record, indent=1, sort_keys=True))
        return
    table = Table(title=f"{site.info.name}: provisioned nodes (provisioner {http_base(site)})")
    for column in ("node", "lease", "last report", "image", "root", "pending reboot"):
        table.add_column(column)
    for state in node_states(boot_nodes(site), record):
        table.add_row(state.node, state.lease or "none", state.last_report or "none", state.image_id or "-",
                      state.root or "-", state.pending_reboot or "")
    console.print(table)
    for mac, seen in sorted((record.get("unknown_macs") or {}).items()):
        console.print(f"[yellow]unknown MAC {mac}[/]: {seen.get('requests')} DHCP request(s), no lease")
