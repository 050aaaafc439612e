"""What the controller acts on, each read back: GPU power limits (the node-side bitten-gpu-power), a flexible QoS's
pending jobs (scontrol hold/release, read back with squeue), a CDU's supply set point (Redfish, within the device's
AllowableMin/Max, read back from the CDU). Every call is retried with backoff until the actuator deadline; what is
recorded is what the actuator reported afterwards, never what was asked.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bitten.core import retry
from bitten.core.process import run
from bitten.energy.slurm import Slurm, SlurmError


class ActuatorError(RuntimeError):
    pass


class Stopping(ActuatorError):
    """The controller is stopping: an actuator's retries end after the attempt that failed, with this as the
    report's error (what the failed attempt did stays as it was; the next start reads the devices afresh)."""


def stoppable_sleep(stop: threading.Event) -> Callable[[float], None]:
    """A sleep between an actuator's attempts that ends when ``stop`` is set, raising :class:`Stopping`: a
    controller told to stop (SIGTERM) does not wait out an actuator's deadline, which can outlast the service
    manager's stop timeout and get the controller killed in the middle of an action."""
    def nap(seconds: float) -> None:
        if stop.wait(seconds):
            raise Stopping("the controller is stopping: no further attempt")
    return nap


@dataclass
class Report:
    """One actuator call: what was asked, what the actuator reported afterwards, and whether they agree."""

    actuator: str
    target: str
    requested: Any
    reported: Any = None
    ok: bool = False
    error: str = ""
    attempts: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"actuator": self.actuator, "target": self.target, "requested": self.requested,
                "reported": self.reported, "ok": self.ok, "error": self.error, "attempts": self.attempts}


class retrying:
    """Retry an actuator call with backoff until ``deadline_s`` (bitten.core.retry, the tree's one helper)."""

    def __init__(self, deadline_s: float, sleep: Callable[[float], None] = time.sleep) -> None:
        self.policy = retry.Backoff(attempts=1000, initial=0.5, maximum=10.0, deadline=deadline_s)
        self.sleep = sleep

    def __call__(self, fn: Callable[..., Any], *args: Any) -> Any:
        return retry.call(lambda: fn(*args), self.policy, lambda e: isinstance(e, ActuatorError | SlurmError),
                          sleep=self.sleep)


class Runner(Protocol):
    def __call__(self, argv: list[str], timeout: float) -> tuple[int, str]: ...


def run_command(argv: list[str], timeout: float) -> tuple[int, str]:
    """The node tool under a hard time limit (bitten.core.process: its process group is killed at the limit)."""
    result = run(argv, timeout)
    if result.timed_out:
        return 124, f"timed out after {timeout:g} s (killed)"
    if result.missing:
        return 127, result.stderr
    return result.returncode if result.returncode is not None else 1, \
        result.stdout if result.stdout.strip() else result.stderr


class GpuCapper:
    """Sets (or reads) one node's GPU power limit through the node-side tool and parses what it reports."""

    def __init__(self, command: Sequence[str], *, deadline_s: float = 60.0, timeout_s: float = 30.0,
                 runner: Runner = run_command, sleep: Callable[[float], None] = time.sleep) -> None:
        self.command = list(command)
        self.deadline_s = deadline_s
        self.timeout_s = timeout_s
        self.runner = runner
        self.sleep = sleep

    def _argv(self, node: str, watts: int | None) -> list[str]:
        """The command for a node; to read only, its ``--watts {watts}`` pair becomes ``--read``."""
        out: list[str] = []
        args = iter(self.command)
        for arg in args:
            if watts is None and arg == "--watts":
                next(args, None)
                out.append("--read")
                continue
            out.append(arg.replace("{node}", node).replace("{watts}", "" if watts is None else str(watts)))
        return out

    def _once(self, node: str, watts: int | None, report: Report) -> dict[str, Any]:
        report.attempts += 1
        code, output = self.runner(self._argv(node, watts), self.timeout_s)
        try:
            doc = json.loads(output.strip().splitlines()[-1]) if output.strip() else {}
        except (ValueError, IndexError):
            doc = {}
        if not isinstance(doc, dict) or "gpus" not in doc:
            error = doc.get("error") if isinstance(doc, dict) else None
            raise ActuatorError(f"{node}: exit {code}: {error or output.strip()[:200] or 'no output'}")
        return doc

    def apply(self, node: str, watts: int | None) -> Report:
        """watts None: only read. The report's ``reported`` is the per-GPU limits the node read back."""
        report = Report("gpu_power_limit", node, watts)
        try:
            doc = retrying(self.deadline_s, self.sleep)(self._once, node, watts, report)
        except ActuatorError as exc:
            report.error = str(exc)
            return report
        gpus: list[Any] = doc["gpus"] if isinstance(doc.get("gpus"), list) else []
        limits = [g.get("limit_w") for g in gpus if isinstance(g, dict)]
        report.reported = limits
        if watts is None:
            report.ok = bool(limits) and all(isinstance(x, int | float) for x in limits)
        else:
            report.ok = bool(doc.get("accepted")) and all(isinstance(x, int | float) and abs(x - watts) <= 1
                                                          for x in limits)
            if not report.ok:
                report.error = "; ".join(str(g.get("error")) for g in gpus if isinstance(g, dict) and g.get("error")) \
                    or f"the GPUs report {limits}"
        return report


@dataclass
class Holder:
    """Holds and releases the pending jobs of a flexible QoS, remembering which jobs it held."""

    slurm: Slurm
    deadline_s: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    held: dict[str, set[str]] = field(default_factory=dict)

    def hold(self, qos: str) -> Report:
        report = Report("slurm_hold", qos, "hold pending jobs")
        try:
            pending = retrying(self.deadline_s, self.sleep)(self.slurm.pending, qos)
            new = [j.job_id for j in pending if not j.held and j.job_id not in self.held.get(qos, set())]
            if new:
                report.attempts += 1
                retrying(self.deadline_s, self.sleep)(self.slurm.hold, new)
            after = {j.job_id: j for j in retrying(self.deadline_s, self.sleep)(self.slurm.pending, qos)}
        except (SlurmError, Stopping) as exc:
            report.error = str(exc)
            return report
        mine = self.held.setdefault(qos, set())
        mine.update(j for j in new if j in after and after[j].held)
        mine.intersection_update(after)  # jobs that started or were cancelled are no longer ours to release
        report.requested = new
        report.reported = {"held_by_controller": sorted(mine, key=_job_order)}
        missed = [j for j in new if j in after and not after[j].held]
        report.ok = not missed
        report.error = f"still not held: {', '.join(missed)}" if missed else ""
        return report

    def release(self, qos: str) -> Report:
        mine = sorted(self.held.get(qos, set()), key=_job_order)
        report = Report("slurm_release", qos, mine)
        try:
            if mine:
                report.attempts += 1
                retrying(self.deadline_s, self.sleep)(self.slurm.release, mine)
            after = {j.job_id: j for j in retrying(self.deadline_s, self.sleep)(self.slurm.pending, qos)}
        except (SlurmError, Stopping) as exc:
            report.error = str(exc)
            return report
        still = [j for j in mine if j in after and after[j].held]
        self.held[qos] = set(still)
        report.reported = {"still_held": still}
        report.ok = not still
        report.error = f"still held: {', '.join(still)}" if still else ""
        return report


def _job_order(job_id: str) -> tuple[int, str]:
    head = job_id.split("_")[0]
    return (int(head) if head.isdigit() else 0, job_id)


class SetpointDevice(Protocol):
    """A CDU's supply set point (bitten.cooling.redfish.RedfishCdu answers it)."""

    def read(self) -> Any: ...

    def set_supply_temperature(self, value: float, *, side: str = "secondary", writes_enabled: bool) -> float: ...


class Setpoint:
    def __init__(self, name: str, device: SetpointDevice, side: str, *, deadline_s: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.name = name
        self.device = device
        self.side = side
        self.deadline_s = deadline_s
        self.sleep = sleep

    def current(self) -> tuple[float | None, float | None, float | None]:
        """Set point, AllowableMin, AllowableMax of the connector, as the CDU reports them now."""
        reading = self.device.read()
        conn = reading.connector(self.side)
        control = conn.supply_setpoint if conn is not None else None
        if control is None:
            return None, None, None
        return control.set_point, control.allowable_min, control.allowable_max

    def apply(self, value: float) -> Report:
        report = Report("cdu_supply_setpoint", f"{self.name}/{self.side}", value)
        try:
            set_point, low, high = self.current()
            if low is None or high is None:
                raise ActuatorError(f"{self.name}: the CDU reports no AllowableMin/AllowableMax: not writing")
            if not low <= value <= high:
                raise ActuatorError(f"{self.name}: {value:g} degC is outside the CDU's allowable range "
                                    f"[{low:g}, {high:g}]")
            if set_point != value:
                report.attempts += 1
                retrying(self.deadline_s, self.sleep)(self._write, value)
            report.reported, _, _ = self.current()
        except Exception as exc:  # a device fault is this actuator's, reported, never the loop's
            report.error = f"{exc.__class__.__name__}: {exc}"[:300]
            return report
        report.ok = report.reported is not None and abs(report.reported - value) < 0.05
        if not report.ok:
            report.error = f"the CDU reports a set point of {report.reported}"
        return report

    def _write(self, value: float) -> None:
        try:
            self.device.set_supply_temperature(value, side=self.side, writes_enabled=True)
        except (OSError, RuntimeError) as exc:
            raise ActuatorError(str(exc)) from exc
