"""Many nodes at once: bounded concurrency, every node attempted, every failure reported at the end.

One failing BMC (wrong password, unreachable, a refused setting, a power timeout) fails only its own node; the
others carry on, and the FleetResult lists what failed and why. Threads, not processes: the work is waiting on
BMCs, and a thread per in-flight node keeps a 256-node run in one process.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Literal

from bitten.core.redfish.connection import Connection
from bitten.core.redfish.credentials import Credentials
from bitten.core.redfish.endpoint import Endpoint, Limits, Timeouts, Tls
from bitten.core.redfish.errors import CredentialsError, RedfishError, RedfishUnsupported, UnknownFlavour
from bitten.core.retry import Backoff
from bitten.hardware.firmware import Drift, drift, read_components
from bitten.hardware.inventory import Inventory, read_inventory
from bitten.hardware.node import BmcNode
from bitten.hardware.plan import DesiredBmcState, Options, Plan, same_value

LOG = logging.getLogger(__name__)

Action = Literal["plan", "apply", "inventory"]
DEFAULT_CONCURRENCY = 32


@dataclass(frozen=True)
class Target:
    """One node to act on: its BMC, what it should hold, and the account to use."""

    endpoint: Endpoint
    desired: DesiredBmcState
    credentials: Credentials

    @property
    def host(self) -> str:
        return self.endpoint.host


@dataclass(frozen=True)
class Settings:
    """How every connection of a run behaves."""

    tls: Tls = field(default_factory=Tls)
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: Backoff = field(default_factory=Backoff)
    limits: Limits = field(default_factory=Limits)


@dataclass
class NodeResult:
    host: str
    where: str
    action: Action
    plan: Plan | None = None
    #: power state after the run
    power: str | None = None
    #: desired BIOS values that wait for the next reboot after the run
    pending: dict[str, Any] = field(default_factory=dict)
    #: the desired BIOS attributes as the BMC holds them after the run (the pending value where one waits)
    bios: dict[str, Any] = field(default_factory=dict)
    inventory: Inventory | None = None
    #: what happened besides the plan (e.g. a graceful shutdown that had to be forced)
    notes: list[str] = field(default_factory=list)
    #: firmware components whose version differs from the profile's baseline (read when it names any)
    firmware: list[Drift] = field(default_factory=list)
    #: reboots other layers found due on this node, not its BMC (e.g. "image X -> Y" from the provisioner)
    also_reboot: list[str] = field(default_factory=list)
    error: str | None = None
    error_kind: str | None = None
    seconds: float = 0.0
    requests: int = 0
    retries: int = 0

    @property
    def blocked(self) -> bool:
        """The plan has problems that make apply refuse (a BIOS attribute the node lacks, a wrong boot MAC)."""
        return self.plan is not None and bool(self.plan.problems)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.blocked

    @property
    def failure(self) -> str | None:
        """Why the node is not ok: its error, or the problems that block its plan."""
        if self.error is not None:
            return self.error
        if self.blocked:
            assert self.plan is not None
            return f"{self.where}: the plan has problems, apply would refuse it: " + "; ".join(self.plan.problems)
        return None

    @property
    def changed(self) -> bool:
        return self.action == "apply" and self.ok and self.plan is not None and self.plan.changed

    @property
    def reboot(self) -> list[str]:
        """Why this node waits for a reboot: BIOS values pending, firmware to install (bitten hardware rollout)."""
        pending = self.pending or (dict(self.plan.pending) if self.plan else {})
        written = [c.item for c in self.plan.of("bios")] if (self.plan is not None and self.action == "plan") else []
        why = [f"BIOS {', '.join(sorted(pending))} pending"] if pending else []
        if written and not self.plan_restarts:
            why.append(f"BIOS {', '.join(sorted(written))} to write")
        return (why + [f"firmware {d.label} {d.expected}" for d in self.firmware if d.current is not None]
                + self.also_reboot)

    @property
    def plan_restarts(self) -> bool:
        """The plan powers the node on or restarts it itself (its BIOS changes apply then, no rollout needed)."""
        return self.plan is not None and bool(self.plan.of("power"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host, "bmc": self.where, "action": self.action, "ok": self.ok, "changed": self.changed,
            "plan": self.plan.as_dict() if self.plan else None, "power": self.power, "pending": dict(self.pending),
            "bios": dict(self.bios), "inventory": self.inventory.as_dict() if self.inventory else None,
            "notes": list(self.notes), "firmware": [str(d) for d in self.firmware], "reboot": self.reboot,
            "error": self.error, "error_kind": self.error_kind, "seconds": round(self.seconds, 3),
            "requests": self.requests, "retries": self.retries,
        }


@dataclass
class FleetResult:
    action: Action
    results: list[NodeResult]
    seconds: float

    @property
    def failed(self) -> list[NodeResult]:
        return [r for r in self.results if not r.ok]

    @property
    def changed(self) -> list[NodeResult]:
        return [r for r in self.results if r.changed]

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "ok": self.ok, "seconds": round(self.seconds, 3),
                "changed": [r.host for r in self.changed], "failed": [r.host for r in self.failed],
                "nodes": [r.as_dict() for r in self.results]}


def run_node(target: Target, action: Action, options: Options | None = None, settings: Settings | None = None,
             with_inventory: bool = False, sleep: Callable[[float], None] = time.sleep) -> NodeResult:
    """Plan, apply or read one node; every failure ends up in the result, never as an exception."""
    options = options or Options()
    settings = settings or Settings()
    endpoint = target.endpoint
    result = NodeResult(host=endpoint.host, where=endpoint.where, action=action)
    start = time.monotonic()
    conn: Connection | None = None
    node: BmcNode | None = None
    try:
        conn = Connection(endpoint, target.credentials, settings.tls, settings.timeouts, settings.retry,
                          settings.limits, sleep)
        with conn:
            node = BmcNode(conn, sleep=sleep)
            if action == "inventory":
                result.inventory = read_inventory(node)
                result.power = result.inventory.power
            else:
                if action == "plan":
                    plan, after = node.plan(target.desired, options)
                else:
                    plan, after = node.apply(target.desired, options)
                result.plan = plan
                result.power = after.power
                result.pending = {k: v for k, v in target.desired.bios.items()
                                  if k in after.bios_pending and same_value(after.bios_pending[k], v)}
                if after.bios is not None:
                    result.bios = {k: after.bios_pending.get(k, after.bios.get(k)) for k in target.desired.bios}
                if with_inventory:
                    result.inventory = read_inventory(node, gpus=False)
                if target.desired.firmware:
                    result.firmware = _firmware_drift(conn, target, result)
    except (RedfishError, CredentialsError) as exc:
        result.error, result.error_kind = str(exc), exc.__class__.__name__
    except UnknownFlavour as exc:
        result.error, result.error_kind = f"{endpoint.where}: {exc}", "UnknownFlavour"
    except Exception as exc:  # a bug or an unexpected answer: report it with the node, keep the fleet going
        LOG.debug("%s: unexpected error\n%s", endpoint.where, traceback.format_exc())
        result.error = f"{endpoint.where}: unexpected {exc.__class__.__name__}: {exc}"
        result.error_kind = "InternalError"
    finally:
        if node is not None:
            result.notes = [*node.notes, *result.notes]
        result.seconds = time.monotonic() - start
        if conn is not None:
            result.requests = conn.connector.counters.requests
            result.retries = conn.connector.counters.retries
    if result.error:
        LOG.error("%s", result.error)
    return result


def _firmware_drift(conn: Connection, target: Target, result: NodeResult) -> list[Drift]:
    try:
        components = read_components(conn, target.endpoint.system_path)
    except RedfishUnsupported as exc:
        result.notes.append(f"firmware not checked: {exc.message}")
        return []
    return drift(target.desired.firmware, components, target.desired.firmware_repository)


def run_fleet(targets: Sequence[Target], action: Action, options: Options | None = None,
              settings: Settings | None = None, concurrency: int = DEFAULT_CONCURRENCY,
              progress: Callable[[NodeResult], None] | None = None, with_inventory: bool = False,
              sleep: Callable[[float], None] = time.sleep) -> FleetResult:
    """Run ``action`` on every target, at most ``concurrency`` at a time; results sorted by host."""
    start = time.monotonic()
    results: list[NodeResult] = []
    if targets:
        workers = max(1, min(concurrency, len(targets)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bmc") as pool:
            futures = [pool.submit(run_node, t, action, options, settings, with_inventory, sleep) for t in targets]
            for future in as_completed(futures):
                node_result = future.result()
                results.append(node_result)
                if progress is not None:
                    progress(node_result)
    results.sort(key=lambda r: r.host)
    return FleetResult(action=action, results=results, seconds=time.monotonic() - start)
