"""The boot stage on the controller: wait until each provisioned node reports up with its image.

After the hardware stage powered a node on with a one-time PXE boot, the node's DHCP lease and reports arrive at
the provisioner (bitten.provision.service.reports, read through ``GET /status``). A stateless node is done when it
reports ``up``; a disk node first boots the image as a deploy ramdisk that writes its disk and reports
``deployed``, then this stage switches the node's boot target to Hdd through its BMC, restarts it (read back:
the BMC must report the new target before the restart) and waits for ``up`` from the disk.

Only reports that arrived after the power-on (or the restart) count; without a power-on time (the node was
already running) the latest report counts, provided the BMC says the node is on. A node whose report names
another image than its profile's is up, with a pending reboot recorded as data (``pending_reboot``) for the
rolling-reboot stage. A node that never asks for DHCP, or never reports, fails when its deadline passes,
reported with what the provisioner saw and its BMC's view (power state, BootProgress where the BMC has it).
Every node waits on its own: one that never boots delays nobody else.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from bitten.core.retry import Deadline
from bitten.provision.nodes import BootNode

#: seconds between two looks at the provisioner's status
POLL_S = 3.0
#: clock difference tolerated between the controller and the provisioner when comparing report times
CLOCK_SLACK_S = 5.0


@dataclass(frozen=True)
class BmcView:
    """What a node's BMC says about it (for reports, and to refuse a stale "up")."""

    power: str | None
    boot_progress: str | None = None
    boot_target: str | None = None
    boot_enabled: str | None = None
    health: str | None = None
    error: str | None = None

    def describe(self) -> str:
        if self.error:
            return f"BMC unreachable: {self.error}"
        progress = self.boot_progress or "not reported by the BMC"
        return (f"BMC: power {self.power or '?'}, BootProgress {progress}, boot "
                f"{self.boot_target or '?'} ({self.boot_enabled or '?'})")


class Bmc(Protocol):
    def view(self) -> BmcView: ...

    def boot_from_disk(self) -> BmcView:
        """Make Hdd the boot target (continuously) and restart the node; returns the view after."""
        ...


StatusFetch = Callable[[], Mapping[str, Any]]


@dataclass
class BootResult:
    node: str
    ok: bool
    #: up, failed
    state: str
    changed: bool = False
    image_id: str | None = None
    deploy: str | None = None
    root: str | None = None
    lease_ip: str | None = None
    powered_on_at: float | None = None
    lease_at: float | None = None
    deployed_at: float | None = None
    up_at: float | None = None
    #: reason a reboot is due (another image than the profile's), or None
    pending_reboot: str | None = None
    problem: str | None = None
    bmc: BmcView | None = None
    steps: list[str] = field(default_factory=list)

    @property
    def seconds_to_lease(self) -> float | None:
        return _delta(self.powered_on_at, self.lease_at)

    @property
    def seconds_to_up(self) -> float | None:
        return _delta(self.powered_on_at, self.up_at)

    def describe(self) -> str:
        """One line for reports: how the node came up (or why not), with its BMC's view when it failed."""
        if not self.ok:
            bmc = f"; {self.bmc.describe()}" if self.bmc else ""
            return f"FAILED: {self.problem}{bmc}"
        where = f", root {self.root}" if self.deploy == "disk" else ""
        took = f", up {self.seconds_to_up:.0f} s after power-on" if self.seconds_to_up is not None else ""
        lease = f", lease {self.lease_ip}" if self.lease_ip else ""
        pending = f"; PENDING REBOOT: {self.pending_reboot}" if self.pending_reboot else ""
        return f"up, image {self.image_id} ({self.deploy}{where}){lease}{took}{pending}"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["seconds_to_lease"] = self.seconds_to_lease
        data["seconds_to_up"] = self.seconds_to_up
        data["line"] = self.describe()
        return data


def image_change(running: str | None, wanted: str) -> str:
    """Why a node reboots for an image (its drain reason during the rollout: ``bitten: reboot: image X -> Y``)."""
    return f"image {running} -> {wanted}"


def _delta(start: float | None, end: float | None) -> float | None:
    return round(end - start, 1) if start is not None and end is not None else None


def http_status(url: str, timeout: float = 10.0) -> StatusFetch:
    """GET the provisioner's /status (plain HTTP on the provisioning network; nothing secret in it)."""

    def fetch() -> Mapping[str, Any]:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - the site's own URL
            data: Mapping[str, Any] = json.load(response)
        return data

    return fetch


def wait_for_boot(node: BootNode, status: StatusFetch, bmc: Bmc | None, since: float | None, timeout: float,
                  poll: float = POLL_S, clock: Callable[[], float] = time.time,
                  sleep: Callable[[float], None] = time.sleep) -> BootResult:
    """Wait for ``node`` to report up (switching a deployed disk node to its disk); never raises for the node."""
    result = BootResult(node=node.name, ok=False, state="failed", powered_on_at=since)
    deadline = Deadline(timeout, clock)
    restarted_at: float | None = None
    seen: Mapping[str, Any] = {}
    last_error = ""
    if since is None and bmc is not None:
        view = bmc.view()
        result.bmc = view
        if view.power == "Off":
            result.problem = "powered off (the BMC says so), and this run did not power it on"
            return result
    while True:
        try:
            snapshot = status()
            offset = float(snapshot.get("time", clock())) - clock()
            seen = snapshot.get("nodes", {}).get(node.name) or {}
            last_error = ""
        except (OSError, ValueError, urllib.error.URLError) as exc:
            last_error = f"the provisioner's status could not be read: {exc}"
            offset = 0.0
        reports = seen.get("reports") or {}
        reference = restarted_at if restarted_at is not None else since
        lease = _lease_since(seen.get("leases") or [], since, offset)
        if lease is not None:
            result.lease_ip, result.lease_at = lease.get("ip"), float(lease["at"]) - offset
        failed = fresh_report(reports, "failed", reference, offset)
        if failed is not None:
            result.problem = f"the node reported failure: {failed.get('message') or 'no reason given'}"
            break
        up = fresh_report(reports, "up", reference, offset)
        if up is not None and (node.deploy != "disk" or up.get("deploy") == "disk"):
            _finish(result, node, up, offset)
            return result
        if node.deploy == "disk" and restarted_at is None:
            deployed = fresh_report(reports, "deployed", since, offset)
            if deployed is not None:
                result.deployed_at = float(deployed["received_at"]) - offset
                result.steps.append(f"image {deployed.get('image_id')} written to {node.disk}")
                if bmc is None:
                    result.problem = "deployed, but there is no BMC to switch its boot target to Hdd"
                    break
                view = bmc.boot_from_disk()
                result.bmc, result.changed = view, True
                if view.error or view.boot_target != "Hdd":
                    result.problem = f"could not boot it from its disk: {view.describe()}"
                    break
                restarted_at = clock()
                result.steps.append("boot target Hdd through the BMC; restarted")
        if deadline.expired:
            result.problem = _diagnose(node, result, reports, last_error, restarted_at, timeout)
            break
        sleep(poll)
    if bmc is not None and (result.bmc is None or result.bmc.error is None):
        result.bmc = bmc.view()
    return result


def fresh_report(reports: Mapping[str, Any], state: str, after: float | None, offset: float
                 ) -> Mapping[str, Any] | None:
    """The node's latest report of ``state`` if it arrived after ``after`` (controller time), else None."""
    report = reports.get(state)
    if not isinstance(report, Mapping):
        return None
    if after is not None and float(report.get("received_at", 0)) < after + offset - CLOCK_SLACK_S:
        return None
    return report


def _lease_since(leases: list[Mapping[str, Any]], since: float | None, offset: float) -> Mapping[str, Any] | None:
    """The first lease of this boot (after ``since``), else the latest one when there is no reference."""
    if since is None:
        return leases[-1] if leases else None
    for lease in leases:
        if float(lease.get("at", 0)) >= since + offset - CLOCK_SLACK_S:
            return lease
    return None


def _finish(result: BootResult, node: BootNode, up: Mapping[str, Any], offset: float) -> None:
    result.ok, result.state = True, "up"
    result.image_id, result.deploy, result.root = up.get("image_id"), up.get("deploy"), up.get("root")
    result.up_at = float(up["received_at"]) - offset
    if result.image_id != node.image_id:
        result.pending_reboot = image_change(result.image_id, node.image_id)


def _diagnose(node: BootNode, result: BootResult, reports: Mapping[str, Any], error: str,
              restarted_at: float | None, timeout: float) -> str:
    waited = f"within {timeout:.0f} s"
    if error:
        return f"no report {waited}; {error}"
    if restarted_at is not None:
        return f"restarted from its disk, but it did not report up {waited}"
    if result.lease_at is None:
        return (f"never asked for DHCP {waited}: no lease for {node.mac} since it was powered on "
                "(is the boot MAC right, the NIC's PXE enabled, the port on the provisioning VLAN?)")
    want = "deployed" if node.deploy == "disk" else "up"
    return (f"got its lease ({result.lease_ip}) but never reported {want} {waited} "
            f"(last report: {_last(reports)})")


def _last(reports: Mapping[str, Any]) -> str:
    last = reports.get("last")
    if not isinstance(last, Mapping):
        return "none"
    return f"{last.get('state')} at {time.strftime('%H:%M:%S', time.localtime(float(last.get('received_at', 0))))}"
