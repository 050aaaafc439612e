"""`bitten ucloud ...`: check the registration on UCloud/Core, list the site's products, build the IM test double.

Exit codes of ``check``: 0 registered; 1 products missing or different on Core; 2 invalid input (site, missing
token); 3 Core refused the refresh token; 4 Core unreachable (after retries).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from bitten.cli.common import load_or_exit
from bitten.site import EXIT_INVALID

app = typer.Typer(no_args_is_help=True)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_NOT_REGISTERED = 1
EXIT_AUTH = 3
EXIT_UNREACHABLE = 4

#: environment variables (documented in roles/ucloud_im/README.md)
ENV_REFRESH_TOKEN = "BITTEN_UCLOUD_REFRESH_TOKEN"  # noqa: S105 - a variable name
ENV_CA_FILE = "BITTEN_UCLOUD_CA_FILE"

InventoryArg = Annotated[list[Path], typer.Argument(help="inventory directory or file(s), as for ansible -i")]


def _token(token_file: Path | None) -> str:
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            err.print(f"[red]error[/]: --refresh-token-file {token_file}: {exc.strerror}")
            raise typer.Exit(EXIT_INVALID) from None
    else:
        token = os.environ.get(ENV_REFRESH_TOKEN, "").strip()
    if not token:
        err.print(f"[red]error[/]: no provider refresh token: set {ENV_REFRESH_TOKEN} or pass --refresh-token-file "
                  "(the token UCloud/Core issued when the provider was created)")
        raise typer.Exit(EXIT_INVALID)
    return token


@app.command()
def check(
    inventory: InventoryArg,
    refresh_token_file: Annotated[Path | None, typer.Option(help=f"file with the provider's refresh token "
                                                            f"(default: ${ENV_REFRESH_TOKEN})")] = None,
    ca_file: Annotated[str | None, typer.Option(help="CA bundle that signed Core's certificate",
                                                envvar=ENV_CA_FILE)] = None,
    core_url: Annotated[str | None, typer.Option(help="override bitten_ucloud.core_url")] = None,
    timeout: Annotated[float, typer.Option(help="seconds per request")] = 10.0,
    retries: Annotated[int, typer.Option(help="retries (with backoff) of failed connections and 5xx answers")] = 4,
    vault_password_file: Annotated[str | None, typer.Option(envvar="ANSIBLE_VAULT_PASSWORD_FILE")] = None,
) -> None:
    """Confirm on UCloud/Core that every product the site defines is registered (with the provider's token)."""
    from bitten.ucloud.check import check_site
    from bitten.ucloud.core import CoreAuthError, CoreClient, CoreError, CoreUnreachable

    site = load_or_exit(inventory, vault_password_file)
    if site.ucloud is None:
        err.print(f"[red]error[/]: {site.info.name} sets no bitten_ucloud: nothing to check")
        raise typer.Exit(EXIT_INVALID)
    token = _token(refresh_token_file)
    url = core_url or site.ucloud.core_url
    try:
        with CoreClient(url, ca_file=ca_file, timeout=timeout, retries=retries) as client:
            result = check_site(site, client, token)
    except CoreAuthError as exc:
        err.print(f"[red]error[/]: {exc}")
        raise typer.Exit(EXIT_AUTH) from None
    except CoreUnreachable as exc:
        err.print(f"[red]error[/]: {exc}")
        raise typer.Exit(EXIT_UNREACHABLE) from None
    except CoreError as exc:
        err.print(f"[red]error[/]: {exc}")
        raise typer.Exit(EXIT_NOT_REGISTERED) from None
    table = Table(title=f"provider {result.provider} on {url}")
    for column in ("category", "product", "on Core"):
        table.add_column(column)
    for product in result.expected:
        key = (product["category"]["name"], product["name"])
        state = ("[red]missing[/]" if key in result.missing else
                 "[yellow]different[/]" if key in result.different else "[green]registered[/]")
        table.add_row(key[0], key[1], state)
    out.print(table)
    for key, diff in result.different.items():
        shown = ", ".join(f"{f}: site {a!r}, Core {b!r}" for f, (a, b) in diff.items())
        err.print(f"[red]error[/]: {key[0]}/{key[1]} differs on Core: {shown}")
    if result.missing:
        err.print(f"[red]error[/]: {len(result.missing)} of {len(result.expected)} product(s) are not registered on "
                  f"Core: {', '.join(f'{c}/{n}' for c, n in result.missing)} (is the Integration Module running on "
                  "the frontend? It registers them at start-up)")
    if result.extra:
        out.print(f"{len(result.extra)} product(s) on Core that the site no longer defines: "
                  + ", ".join(f"{c}/{n}" for c, n in result.extra))
    if not result.ok:
        raise typer.Exit(EXIT_NOT_REGISTERED)
    out.print(f"[green]✓[/] all {len(result.expected)} product(s) of {result.provider} are registered on UCloud/Core")


@app.command()
def products(inventory: InventoryArg,
             vault_password_file: Annotated[str | None, typer.Option(envvar="ANSIBLE_VAULT_PASSWORD_FILE")] = None,
             ) -> None:
    """List the products the site's Integration Module registers on UCloud/Core."""
    from bitten.ucloud.imconfig import expected_products

    site = load_or_exit(inventory, vault_password_file)
    if site.ucloud is None:
        err.print(f"[red]error[/]: {site.info.name} sets no bitten_ucloud")
        raise typer.Exit(EXIT_INVALID)
    table = Table(title=f"products of provider {site.ucloud.provider_id}")
    for column in ("category", "product", "cpu", "memory GB", "gpu", "unit", "price"):
        table.add_column(column)
    for p in expected_products(site):
        table.add_row(p["category"]["name"], p["name"], str(p.get("cpu", "")), str(p.get("memoryInGigs", "")),
                      str(p.get("gpu", "")), p["category"]["accountingUnit"]["name"], str(p["price"]))
    out.print(table)


@app.command("im-double-package")
def im_double_package(
    out_dir: Annotated[Path, typer.Option("--out", help="directory to write the package into")],
    fmt: Annotated[str, typer.Option("--format", help="deb or tar")] = "deb",
) -> None:
    """Build the IM TEST DOUBLE as a package the ucloud_im role installs like a real IM (deb or tarball)."""
    from bitten.lab.doubles.ucloud_package import FORMATS, build

    if fmt not in FORMATS:
        err.print(f"[red]error[/]: --format {fmt}: expected one of {', '.join(FORMATS)}")
        raise typer.Exit(EXIT_INVALID)
    path = build(fmt, out_dir)
    out.print(str(path))


@app.command("core-double-package")
def core_double_package(
    out_dir: Annotated[Path, typer.Option("--out", help="directory to write the zipapp into")],
) -> None:
    """Build the UCloud/Core TEST DOUBLE as a zipapp (for a container; needs python3-jwt, python3-cryptography)."""
    from bitten.lab.doubles.ucloud_package import build_core_double

    out.print(str(build_core_double(out_dir)))
