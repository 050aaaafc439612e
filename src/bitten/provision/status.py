"""The provisioner's record, node by node: what each node last did, and whether a reboot is due.

A node is due a reboot when the image it reported is not the one its hardware profile names now (a new recipe
was published): that is data for the stage that reboots nodes through Slurm (``bitten hardware rollout`` makes a
RebootNeed of each ``ImageReboot``, ``bitten hardware plan`` shows them), never an action taken here. After the
reboot, ``booted_image`` is the check that it took: the node's latest "up" report names the profile's image.

A disk node boots its disk, so a reboot does not give it the new image: it needs a redeploy (a one-time PXE boot,
what the hardware and boot stages do), and the rollout leaves it out (``ImageReboot.by_reboot``).
"""

from __future__ import annotations

import time
import urllib.error
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bitten.core.retry import Deadline
from bitten.provision.boot import StatusFetch, fresh_report, image_change
from bitten.provision.nodes import BootNode

#: seconds the check after a reboot waits for the node's "up" report (it follows slurmd's registration: the
#: report is sent once multi-user.target is reached)
REPORT_WAIT_S = 120.0


@dataclass(frozen=True)
class NodeState:
    node: str
    lease: str | None
    last_report: str | None
    image_id: str | None
    root: str | None
    #: why the node should reboot (its image is not its profile's), or None
    pending_reboot: str | None


def _when(at: Any) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(at)))


def node_states(nodes: Mapping[str, BootNode], record: Mapping[str, Any]) -> list[NodeState]:
    out = []
    for name, node in nodes.items():
        seen = (record.get("nodes") or {}).get(name) or {}
        leases = seen.get("leases") or []
        reports = seen.get("reports") or {}
        last = reports.get("last") or {}
        up = reports.get("up") or {}
        image = up.get("image_id")
        pending = None
        if image and image != node.image_id:
            pending = image_change(image, node.image_id) + (" (disk: a redeploy)" if node.deploy == "disk" else "")
        out.append(NodeState(
            node=name, lease=f"{leases[-1]['ip']} at {_when(leases[-1]['at'])}" if leases else None,
            last_report=f"{last.get('state')} at {_when(last.get('received_at', 0))}" if last else None,
            image_id=image, root=up.get("root"), pending_reboot=pending))
    return out


def pending_reboots(nodes: Mapping[str, BootNode], record: Mapping[str, Any]) -> dict[str, str]:
    """node -> reason, for the nodes whose running image is not their profile's."""
    return {s.node: s.pending_reboot for s in node_states(nodes, record) if s.pending_reboot}


@dataclass(frozen=True)
class ImageReboot:
    """A node that runs an older image than its profile names (``image_id`` it reported, ``wanted`` now)."""

    host: str
    running: str
    wanted: str
    deploy: str

    @property
    def why(self) -> str:
        return image_change(self.running, self.wanted)

    @property
    def by_reboot(self) -> bool:
        """A reboot gives it the new image (stateless: it PXE-boots again); a disk node needs a redeploy."""
        return self.deploy != "disk"


def image_reboots(nodes: Mapping[str, BootNode], record: Mapping[str, Any]) -> list[ImageReboot]:
    """The nodes (of ``nodes``) whose latest "up" report names another image than their profile, by name."""
    out = []
    for name, node in sorted(nodes.items()):
        up = ((((record.get("nodes") or {}).get(name) or {}).get("reports") or {}).get("up")) or {}
        image = up.get("image_id")
        if isinstance(image, str) and image and image != node.image_id:
            out.append(ImageReboot(host=name, running=image, wanted=node.image_id, deploy=node.deploy))
    return out


def booted_image(node: BootNode, status: StatusFetch, timeout: float = REPORT_WAIT_S, poll: float = 5.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> Callable[[], str | None]:
    """The check after a reboot for a new image: None once the node's latest "up" report names its profile's
    image (waiting up to ``timeout`` for it), else what the provisioner shows."""

    def verify() -> str | None:
        deadline = Deadline(timeout, clock)
        seen = "no report"
        while True:
            try:
                up = (((status().get("nodes") or {}).get(node.name) or {}).get("reports") or {}).get("up") or {}
                image = up.get("image_id")
                if image == node.image_id:
                    return None
                seen = f"its last report names image {image}" if image else "it has not reported up"
            except (OSError, ValueError, urllib.error.URLError) as exc:
                seen = f"the provisioner's status could not be read: {exc}"
            if deadline.expired:
                return f"not on image {node.image_id} within {timeout:g} s: {seen}"
            sleep(poll)

    return verify


def reported_up_since(status: StatusFetch, clock: Callable[[], float] = time.time) -> Callable[[str, float], bool]:
    """``Reconverge.booted_since`` from the provisioner's record: the node's latest "up" report arrived after
    ``since`` (this machine's wall clock; the provisioner's clock offset from its ``time`` taken out). A record
    that cannot be read is not a report: False, and the rollout's timeout reports the node."""

    def booted_since(name: str, since: float) -> bool:
        try:
            snapshot = status()
        except (OSError, ValueError, urllib.error.URLError):
            return False
        offset = float(snapshot.get("time", clock())) - clock()
        reports = ((snapshot.get("nodes") or {}).get(name) or {}).get("reports") or {}
        return fresh_report(reports, "up", since, offset) is not None

    return booted_since
