"""`bitten fabric check`: the discovered InfiniBand fabric against the inventory's cabling plan.

Exit codes: 0 the fabric is as the inventory says; 1 findings (miscabling, missing links, wrong width or speed,
misplaced HCAs, unexpected devices or switches); 2 invalid inventory or no bitten_fabric; 3 the fabric could not be
discovered (tools missing, failing, timing out) or the files given are not the tools' output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from bitten.cli.common import InventoryArg, VaultOpt, err, load_or_exit, out
from bitten.site import EXIT_INVALID

app = typer.Typer(no_args_is_help=True)

EXIT_FINDINGS = 1
EXIT_DISCOVERY = 3


@app.command()
def check(
    inventory: InventoryArg,
    ibnetdiscover: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="recorded ibnetdiscover "
                                                       "output (default: run the tools on this host)")] = None,
    iblinkinfo: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="recorded iblinkinfo "
                                                    "output (default: run the tools on this host)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="findings as JSON")] = False,
    timeout: Annotated[float, typer.Option(help="seconds each tool may run")] = 120.0,
    vault_password_file: VaultOpt = None,
) -> None:
    """Compare the fabric as discovered (ibnetdiscover, iblinkinfo) with bitten_fabric: every fault, one per line."""
    from bitten.fabric.check import DiscoveryError, check, run_tools

    site = load_or_exit(inventory, vault_password_file)
    if site.fabric is None:
        err.print(f"[red]error[/]: {site.info.name} has no bitten_fabric: nothing to compare the fabric with")
        raise typer.Exit(EXIT_INVALID)
    try:
        if ibnetdiscover is None and iblinkinfo is None:
            outputs = run_tools(timeout)
        else:
            outputs = {name: path.read_text(encoding="utf-8", errors="replace")
                       for name, path in (("ibnetdiscover", ibnetdiscover), ("iblinkinfo", iblinkinfo)) if path}
        result = check(site.fabric, outputs)
    except DiscoveryError as exc:
        err.print(f"[red]error[/]: {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(EXIT_DISCOVERY) from None
    for line in result.unparsed:
        err.print(f"[yellow]warning[/]: not understood: {escape(line)}", soft_wrap=True)
    if as_json:
        out.print(json.dumps({"fabric": site.fabric.name, "findings": [f.as_dict() for f in result.findings],
                              "unparsed": result.unparsed}, indent=2), markup=False, soft_wrap=True)
    else:
        for finding in result.findings:
            out.print(str(finding), markup=False, soft_wrap=True)
        verdict = (f"{len(result.findings)} finding(s)" if result.findings else "as the inventory says")
        out.print(f"{site.fabric.name}: {result.switches} switches, {result.links} links discovered; {verdict}",
                  markup=False, soft_wrap=True)
    if result.findings:
        raise typer.Exit(EXIT_FINDINGS)
