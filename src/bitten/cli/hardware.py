"""``bitten hardware plan|apply|inventory|rollout INVENTORY``: BMC state for CI pipelines and sysadmins.

Validates the site first (exit 2 on any problem, before a BMC is contacted), takes BMC credentials from the
environment (BITTEN_BMC_USERNAME/BITTEN_BMC_PASSWORD or BITTEN_BMC_CREDENTIALS), and verifies TLS against the
system trust store or ``--ca``. Exit 0 when every node succeeded, 1 when any failed (all are attempted).

``plan`` and ``rollout`` also read the provisioner's record (``GET /status``, when the site provisions nodes):
a provisioned node that reported an older image than its profile names waits for a reboot ("image X -> Y");
the rollout's check after its reboot is the node's new "up" report with the profile's image. A disk node is
shown but not rebooted (its disk holds the old image: it needs a redeploy). A record that cannot be read is an
error (exit 1): the other nodes are planned or rolled, those nodes' images are unknown.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from bitten.cli.common import load_or_exit
from bitten.core.redfish import flavours
from bitten.core.redfish.endpoint import Timeouts, Tls
from bitten.core.redfish.errors import CredentialsError
from bitten.core.retry import Backoff
from bitten.core.scontrol import Scontrol
from bitten.hardware.changes import Stager, bmc_restart, reboot_needs
from bitten.hardware.credentials import CredentialStore
from bitten.hardware.fleet import DEFAULT_CONCURRENCY, Action, FleetResult, Settings, run_fleet
from bitten.hardware.plan import Options
from bitten.hardware.report import fleet_table, inventory_table, rollout_table, summary
from bitten.hardware.rollout import (
    BmcReboot,
    RebootNeed,
    Reconverge,
    Rollout,
    SlurmReboot,
    command_converge,
    gate_command,
    merge_needs,
    waves_of,
)
from bitten.hardware.targets import Selection, select
from bitten.site import EXIT_INVALID, Site
from bitten.site.model import RolloutSettings

if TYPE_CHECKING:
    from bitten.provision.status import ImageReboot

app = typer.Typer(no_args_is_help=True, help="BMC state through Redfish: BIOS, one-time boot, power, inventory.")
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

InventoryArg = Annotated[list[Path], typer.Argument(help="inventory directory or file(s), as for ansible -i")]
LimitOpt = Annotated[list[str], typer.Option("--limit", "-l", help="hosts or groups (repeat or comma-separate)")]
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", "-j", min=1, max=1024,
                                             help="BMCs worked on at the same time")]
CaOpt = Annotated[Path | None, typer.Option("--ca", envvar="BITTEN_BMC_CA", exists=True, dir_okay=False,
                                            help="CA bundle that signed the BMC certificates")]
InsecureOpt = Annotated[bool, typer.Option("--insecure", help="do not verify BMC certificates (not recommended)")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", min=0.1, help="seconds to wait for a BMC to answer")]
PowerTimeoutOpt = Annotated[float, typer.Option("--power-timeout", min=1, help="seconds a power transition may take")]
RetriesOpt = Annotated[int, typer.Option("--retries", min=0, max=20, help="retries on timeouts, resets and 5xx")]
NoMacOpt = Annotated[bool, typer.Option("--no-check-mac", help="do not require the BMC to report bitten_boot_mac")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as JSON (for pipelines)")]
StatusOpt = Annotated[str | None, typer.Option("--provisioner-status", help="the provisioner's status URL, for "
                                               "nodes that run an older image (default: the site's provisioner)")]
VaultOpt = Annotated[str | None, typer.Option("--vault-password-file", help="for vaulted inventory variables",
                                              envvar="ANSIBLE_VAULT_PASSWORD_FILE")]


def _settings(ca: Path | None, insecure: bool, timeout: float, power_timeout: float, retries: int) -> Settings:
    if insecure:
        err.print("[yellow]warning[/]: --insecure: BMC certificates are not verified")
    return Settings(tls=Tls(verify=not insecure, ca_file=str(ca) if ca else None),
                    timeouts=Timeouts(connect=min(10.0, timeout), read=timeout, power=power_timeout),
                    retry=Backoff(attempts=retries + 1))


def _select(inventory: list[Path], vault: str | None, limit: list[str], site: Site | None = None) -> Selection:

    site = site or load_or_exit(inventory, vault)
    try:
        selection = select(site, CredentialStore.from_env(), limit)
    except (KeyError, CredentialsError) as exc:
        err.print(f"[red]error[/]: {exc.args[0] if isinstance(exc, KeyError) else exc}")
        err.print("nothing was contacted.")
        raise typer.Exit(EXIT_INVALID) from None
    for host, why in selection.skipped.items():
        err.print(f"[dim]skipped {host}: {why}[/]")
    if not selection.targets:
        err.print("[yellow]no node with a BMC and a hardware profile was selected[/]")
    return selection


@dataclass
class Images:
    """What the provisioner's record says of the selected provisioned nodes' images."""

    changes: list[ImageReboot] = field(default_factory=list)
    needs: list[RebootNeed] = field(default_factory=list)
    #: why the record could not be read (the nodes' images are unknown), or None
    error: str | None = None


def _images(site: Site, hosts: list[str], url: str | None) -> Images:
    """The selected nodes that run an older image than their profile names, from the provisioner's record."""
    # imported here: only sites that provision nodes need them
    import urllib.error

    from bitten.provision.boot import http_status
    from bitten.provision.nodes import boot_nodes, http_base
    from bitten.provision.status import booted_image, image_reboots

    nodes = {h: n for h, n in boot_nodes(site).items() if h in hosts}
    if not nodes:
        return Images()
    fetch = http_status(url or f"{http_base(site)}/status")
    try:
        record = fetch()
    except (OSError, ValueError, urllib.error.URLError) as exc:
        return Images(error=f"the provisioner's status could not be read ({url or http_base(site)}): {exc}; "
                            f"the images of {', '.join(sorted(nodes))} are unknown")
    changes = image_reboots(nodes, record)
    return Images(changes=changes, needs=[RebootNeed(c.host, c.why, booted_image(nodes[c.host], fetch))
                                          for c in changes if c.by_reboot])


def _reconverge(site: Site, hosts: list[str], config: RolloutSettings, url: str | None) -> Reconverge | str | None:
    """How the stateless provisioned nodes among ``hosts`` get their configuration back after their reboot (they
    PXE-boot their image with its identity only), or why they cannot (a str: nothing may be rebooted)."""
    from bitten.provision.boot import http_status
    from bitten.provision.nodes import boot_nodes, http_base
    from bitten.provision.status import reported_up_since

    stateless = sorted(h for h, n in boot_nodes(site).items() if h in hosts and n.deploy != "disk")
    if not stateless:
        return None
    if not config.converge:
        return (f"{', '.join(stateless)} boot(s) stateless: after the reboot only the playbooks give back munge, "
                "slurm.conf and the rest, but bitten_rollout.converge is not set. Set it to the command that "
                "converges a node, e.g. [ansible-playbook, -i, inventory/bitten, playbooks/site.yml] (bitten "
                "appends --limit <node>), or leave those nodes out with --limit")
    return Reconverge(hosts=frozenset(stateless),
                      booted_since=reported_up_since(http_status(url or f"{http_base(site)}/status")),
                      run=command_converge(config.converge, config.converge_timeout_s))


def _image_line(change: ImageReboot) -> str:
    return change.why if change.by_reboot else f"{change.why} (a disk node: a redeploy, not a reboot)"


def _run(action: Action, inventory: list[Path], vault: str | None, limit: list[str], concurrency: int,
         settings: Settings, options: Options, as_json: bool, status_url: str | None = None
         ) -> tuple[FleetResult, str | None]:
    """The fleet's result, and why the provisioner's record could not be read (plan only), if it could not."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # failures are in the table below; sushy's own messages repeat bitten's
    logging.getLogger("sushy").setLevel(logging.CRITICAL)
    logging.getLogger("bitten.hardware.fleet").setLevel(logging.CRITICAL)
    site = load_or_exit(inventory, vault)
    selection = _select(inventory, vault, limit, site)
    done = 0

    with err.status(f"{action}: 0/{len(selection.targets)} nodes", spinner="dots") as status:

        def progress(node: object) -> None:
            nonlocal done
            done += 1
            status.update(f"{action}: {done}/{len(selection.targets)} nodes")

        result = run_fleet(selection.targets, action, options, settings, concurrency, progress=progress)
    images = Images()
    if action == "plan":
        images = _images(site, [t.host for t in selection.targets], status_url)
        lines = {c.host: _image_line(c) for c in images.changes}
        for node in result.results:
            if node.ok and node.host in lines:
                node.also_reboot.append(lines[node.host])
    if as_json:
        out.print_json(json.dumps(result.as_dict(), default=str))
    else:
        if action == "inventory":
            out.print(inventory_table(result))
        else:
            out.print(fleet_table(result))
        out.print(summary(result))
    if result.failed:
        err.print(f"[red]{len(result.failed)} node(s) failed[/]: {', '.join(r.host for r in result.failed)}")
    if images.error:
        err.print(f"[red]error[/]: {images.error}")
    return result, images.error


@app.command()
def plan(inventory: InventoryArg, limit: LimitOpt = [], concurrency: ConcurrencyOpt = DEFAULT_CONCURRENCY,  # noqa: B006
         ca: CaOpt = None, insecure: InsecureOpt = False, timeout: TimeoutOpt = 60.0,
         power_timeout: PowerTimeoutOpt = 300.0, retries: RetriesOpt = 4, no_check_mac: NoMacOpt = False,
         reboot: Annotated[bool, typer.Option("--reboot", help="plan restarts for pending BIOS changes")] = False,
         provisioner_status: StatusOpt = None, as_json: JsonOpt = False, vault_password_file: VaultOpt = None) -> None:
    """What apply would change on each BMC, and which nodes wait for a reboot (BIOS, firmware, an older image);
    reads only."""
    settings = _settings(ca, insecure, timeout, power_timeout, retries)
    result, unknown = _run("plan", inventory, vault_password_file, limit, concurrency, settings,
                           Options(reboot=reboot, check_boot_mac=not no_check_mac), as_json, provisioner_status)
    raise typer.Exit(1 if result.failed or unknown else 0)


@app.command()
def apply(inventory: InventoryArg, limit: LimitOpt = [], concurrency: ConcurrencyOpt = DEFAULT_CONCURRENCY,  # noqa: B006
          ca: CaOpt = None, insecure: InsecureOpt = False, timeout: TimeoutOpt = 60.0,
          power_timeout: PowerTimeoutOpt = 300.0, retries: RetriesOpt = 4, no_check_mac: NoMacOpt = False,
          reboot: Annotated[bool, typer.Option("--reboot", help="restart running nodes whose BIOS changes wait for "
                                               "a reboot (they boot through the one-time boot)")] = False,
          no_wait: Annotated[bool, typer.Option("--no-wait", help="do not wait for power transitions")] = False,
          as_json: JsonOpt = False, vault_password_file: VaultOpt = None) -> None:
    """Plan and apply each node's BIOS, one-time boot and power; every node is attempted, failures listed."""
    settings = _settings(ca, insecure, timeout, power_timeout, retries)
    result, _ = _run("apply", inventory, vault_password_file, limit, concurrency, settings,
                  Options(reboot=reboot, check_boot_mac=not no_check_mac, wait=not no_wait), as_json)
    raise typer.Exit(1 if result.failed else 0)


@app.command()
def rollout(inventory: InventoryArg, limit: LimitOpt = [],  # noqa: B006
            firmware: Annotated[bool, typer.Option("--firmware", help="also install the profiles' firmware "
                                                   "baseline (staged in each wave before its reboot)")] = False,
            reason: Annotated[str | None, typer.Option("--reason", help="reboot every selected node for this "
                                                       "reason too (a new image, a new GPU driver)")] = None,
            wave_size: Annotated[int | None, typer.Option("--wave-size", min=1, help="nodes per wave "
                                                          "(default: bitten_rollout.wave_size)")] = None,
            dry_run: Annotated[bool, typer.Option("--dry-run", help="show the waves; reboot nothing")] = False,
            concurrency: ConcurrencyOpt = DEFAULT_CONCURRENCY, ca: CaOpt = None, insecure: InsecureOpt = False,
            timeout: TimeoutOpt = 60.0, retries: RetriesOpt = 4, provisioner_status: StatusOpt = None,
            as_json: JsonOpt = False, vault_password_file: VaultOpt = None) -> None:
    """Reboot the nodes that need it (pending BIOS settings, staged firmware, an older image, --reason) through
    Slurm, in waves."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("sushy").setLevel(logging.CRITICAL)
    site = load_or_exit(inventory, vault_password_file)
    settings = _settings(ca, insecure, timeout, 300.0, retries)
    try:
        selection = select(site, CredentialStore.from_env(), limit)
    except (KeyError, CredentialsError) as exc:
        err.print(f"[red]error[/]: {exc.args[0] if isinstance(exc, KeyError) else exc}")
        err.print("nothing was contacted.")
        raise typer.Exit(EXIT_INVALID) from None
    config = site.rollout if wave_size is None else site.rollout.model_copy(update={"wave_size": wave_size})
    plans = run_fleet(selection.targets, "plan", Options(check_boot_mac=False), settings, concurrency)
    for failed in plans.failed:
        err.print(f"[red]{failed.host}[/]: {failed.error} (not rebooted)")
    images = _images(site, [t.host for t in selection.targets], provisioner_status)
    if images.error:
        err.print(f"[red]error[/]: {images.error}")
    for change in images.changes:
        if not change.by_reboot:
            err.print(f"[yellow]{change.host}[/]: {_image_line(change)}: not rebooted (boot it once over PXE: "
                      "the hardware and boot stages redeploy it)")
    unsure = 1 if plans.failed or images.error else 0
    reasons = [RebootNeed(t.host, reason) for t in selection.targets] if reason else []
    # the BMC's needs first, then the image, then --reason: the order of the whys in the drain reason
    needs = merge_needs([*reboot_needs(plans.results, selection.targets, settings, firmware=firmware),
                         *images.needs, *reasons])
    waves = waves_of([n.host for n in needs], config.wave_size)
    whys = {n.host: n.why for n in needs}
    # with --json, stdout carries the JSON alone (the waves as text go to stderr)
    text_out = err if as_json else out
    if not needs:
        text_out.print("no node waits for a reboot")
    for index, wave in enumerate(waves, start=1):
        text_out.print(f"wave {index}: " + "; ".join(f"{h} ({whys[h]})" for h in wave))
    if not needs or dry_run:
        if as_json:
            out.print_json(json.dumps({"waves": waves, "why": whys, "dry_run": dry_run}))
        raise typer.Exit(unsure)
    reconverge = _reconverge(site, [n.host for n in needs], config, provisioner_status)
    if isinstance(reconverge, str):
        err.print(f"[red]error[/]: {reconverge}")
        err.print("nothing was rebooted.")
        raise typer.Exit(EXIT_INVALID)
    targets = {t.host: t for t in selection.targets}
    rebooter = SlurmReboot() if config.method == "slurm" else BmcReboot(bmc_restart(targets, settings))
    gpu_hosts = {h for h in targets if (p := site.profile_of(h)) is not None and p.gpu is not None}
    runner = Rollout(Scontrol(config.scontrol), config, rebooter,
                     gate_commands=lambda h: gate_command(config, site.slurm.health_check_program, h in gpu_hosts),
                     progress=lambda text: err.print(f"[dim]{text}[/]"), reconverge=reconverge)
    result = runner.run(needs, prepare=Stager(targets, settings, firmware, config.update_timeout_s))
    if as_json:
        out.print_json(json.dumps(result.as_dict()))
    else:
        out.print(rollout_table(result))
    if result.stopped:
        err.print(f"[red]stopped[/]: {result.stopped}")
    raise typer.Exit(0 if result.ok and not unsure else 1)


@app.command("flavours")
def flavours_() -> None:
    """The BMC vendor flavours bitten knows (bitten_bmc.flavour): the modules of bitten.core.redfish.flavours."""
    for name, line in flavours.describe().items():
        out.print(f"{name:<12} {line}")


@app.command("inventory")
def inventory_(inventory: InventoryArg, limit: LimitOpt = [],  # noqa: B006
               concurrency: ConcurrencyOpt = DEFAULT_CONCURRENCY, ca: CaOpt = None, insecure: InsecureOpt = False,
               timeout: TimeoutOpt = 60.0, retries: RetriesOpt = 4, as_json: JsonOpt = False,
               vault_password_file: VaultOpt = None) -> None:
    """Model, serial, MACs, processors, memory and GPUs as each BMC reports them."""
    settings = _settings(ca, insecure, timeout, 300.0, retries)
    result, _ = _run("inventory", inventory, vault_password_file, limit, concurrency, settings, Options(), as_json)
    raise typer.Exit(1 if result.failed else 0)
