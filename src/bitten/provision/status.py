"""The provisioner's record, node by node: what each node last did, and whether a reboot is due.

A node is due a reboot when the image it reported is not the one its hardware profile names now (a new recipe
was published): that is data for the stage that reboots nodes through Slurm, never an action taken here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bitten.provision.nodes import BootNode


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
            pending = f"new image: runs {image}, profile {node.profile} names {node.image_id}"
        out.append(NodeState(
            node=name, lease=f"{leases[-1]['ip']} at {_when(leases[-1]['at'])}" if leases else None,
            last_report=f"{last.get('state')} at {_when(last.get('received_at', 0))}" if last else None,
            image_id=image, root=up.get("root"), pending_reboot=pending))
    return out


def pending_reboots(nodes: Mapping[str, BootNode], record: Mapping[str, Any]) -> dict[str, str]:
    """node -> reason, for the nodes whose running image is not their profile's."""
    return {s.node: s.pending_reboot for s in node_states(nodes, record) if s.pending_reboot}
