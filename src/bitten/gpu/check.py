"""``bitten-gpu-health``: the Slurm HealthCheckProgram and prolog check for GPU nodes.

It reads what the node should have (/etc/bitten/gpu-node.json, rendered by bitten from the hardware profile) and
how strict to be (/etc/bitten/gpu-health.json, written by the gpu role), asks nvidia-smi, the NVLink topology,
Fabric Manager and the kernel log (every command under a time limit, the whole run under a deadline), then
drains the node with a precise reason, or resumes it when it had drained it itself and the GPUs are healthy again.

Exit status: 0 healthy, 1 unhealthy (as a prolog, Slurm then requeues the job), 2 bad configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bitten.core.process import Result, run
from bitten.core.scontrol import NodeState, Scontrol, ScontrolError
from bitten.gpu import health as h
from bitten.gpu.drain import Action, decide, reason_text
from bitten.gpu.smi import EXIT_CODES, SmiParseError, SmiReport, parse_query
from bitten.gpu.topology import TopologyParseError, parse_topology
from bitten.gpu.xid import XidEvent, parse_kernel_log

NODE_FILE = "/etc/bitten/gpu-node.json"
CONFIG_FILE = "/etc/bitten/gpu-health.json"
EXIT_HEALTHY, EXIT_UNHEALTHY, EXIT_CONFIG = 0, 1, 2
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Config:
    expect: h.Expectation
    policy: h.Policy = field(default_factory=h.Policy)
    nvidia_smi: str = "nvidia-smi"
    kernel_log_command: tuple[str, ...] = ("journalctl", "--dmesg", "--boot=0", "--output=short-unix",
                                           "--no-pager", "--quiet")
    fabric_manager_service: str | None = None
    #: fourth-generation NVSwitch: the NVLSM process Fabric Manager's wrapper starts (None: not checked)
    nvlsm_process: str | None = None
    #: per-command limit and the whole run's deadline, seconds (slurmd gives a health check 60 s)
    command_timeout: float = 20.0
    deadline: float = 50.0
    #: a container has no NVIDIA driver: a missing nvidia-smi is skipped there, not a failure
    container: bool = False
    state_dir: str = "/var/lib/bitten-gpu-health"

    @classmethod
    def load(cls, node_file: str, config_file: str) -> Config:
        node = _read_json(node_file)
        options = _read_json(config_file) if Path(config_file).exists() else {}
        gpu = node.get("gpu") or {}
        expect = h.Expectation(count=int(gpu.get("count", 0)), slurm_type=str(gpu.get("slurm_type", "")),
                               model=str(gpu.get("model", "")), architecture=str(gpu.get("architecture", "")),
                               nvswitch=bool(gpu.get("nvswitch", False)),
                               devices=tuple(str(d) for d in gpu.get("devices", ())))
        codes = options.get("xid_codes")
        policy = h.Policy(require_ecc=bool(options.get("require_ecc", True)),
                          require_persistence=bool(options.get("require_persistence", False)),
                          min_nvlinks=int(options.get("min_nvlinks", 0)),
                          xid_codes=frozenset(int(c) for c in codes) if codes is not None else None)
        kernel_log = options.get("kernel_log_command")
        return cls(expect=expect, policy=policy, nvidia_smi=str(options.get("nvidia_smi", "nvidia-smi")),
                   kernel_log_command=tuple(kernel_log) if kernel_log else cls.kernel_log_command,
                   fabric_manager_service=options.get("fabric_manager_service") or None,
                   nvlsm_process=options.get("nvlsm_process") or None,
                   command_timeout=float(options.get("command_timeout", 20.0)),
                   deadline=float(options.get("deadline", 50.0)), container=bool(options.get("container", False)),
                   state_dir=str(options.get("state_dir", cls.state_dir)))


def process_running(name: str, proc: str = "/proc") -> bool:
    """Whether a process whose command name is ``name`` runs (NVLSM has no unit of its own to ask systemd)."""
    for comm in Path(proc).glob("[0-9]*/comm"):
        try:
            if comm.read_text(encoding="utf-8", errors="replace").strip() == name:
                return True
        except OSError:  # the process ended while we looked
            continue
    return False


def _read_json(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HealthConfigError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise HealthConfigError(f"{path}: expected a JSON object")
    return data


class HealthConfigError(Exception):
    pass


Runner = Callable[[Sequence[str], float], Result]


class Clock:
    """The run's deadline: each command gets at most what is left of it."""

    def __init__(self, deadline: float, per_command: float) -> None:
        self.end = time.monotonic() + deadline
        self.per_command = per_command

    def budget(self) -> float:
        return max(0.0, min(self.per_command, self.end - time.monotonic()))


def _smi_failure(result: Result, timeout: float) -> str:
    if result.timed_out:
        return f"nvidia-smi hung (no answer within {timeout:.0f} s)"
    meaning = EXIT_CODES.get(result.returncode or 0, "unexpected error")
    return f"nvidia-smi failed: {meaning} (exit {result.returncode})"


def _ack_time(config: Config) -> float | None:
    try:
        return float(Path(config.state_dir, "xid-ack").read_text().strip())
    except (OSError, ValueError):
        return None


def _epoch(stamp: str | None) -> float | None:
    """Seconds since the epoch of a kernel log timestamp; None for dmesg's seconds-since-boot or no stamp."""
    if stamp is None:
        return None
    try:
        value = float(stamp)
    except ValueError:
        try:
            return datetime.fromisoformat(stamp.replace(",", ".")).timestamp()
        except ValueError:
            return None
    return value if value > 1e9 else None


def evaluate(config: Config, runner: Runner = run) -> h.Verdict:
    """Run every check within the deadline and return what each found."""
    clock = Clock(config.deadline, config.command_timeout)
    verdict = h.Verdict()
    add = verdict.checks.append
    expect = config.expect
    if expect.count == 0:
        add(h.Check("gpus", h.Status.SKIP, detail="the hardware profile has no GPUs"))
        return verdict

    missing_devices = [d for d in expect.devices if not _is_char_device(d)]
    add(h.Check("devices", h.Status.FAIL, (f"device files missing: {', '.join(missing_devices)}",))
        if missing_devices else h.Check("devices", h.Status.OK, detail=f"{len(expect.devices)} device files"))

    budget = clock.budget()
    result = runner([config.nvidia_smi, "-q", "-x"], budget)
    report: SmiReport | None = None
    if result.missing and config.container:
        add(h.Check("driver", h.Status.SKIP, detail="no NVIDIA driver in this container"))
    elif result.missing:
        add(h.Check("driver", h.Status.FAIL, (f"nvidia-smi not found ({config.nvidia_smi})",)))
    elif not result.ok and result.returncode == 9 and config.container:
        add(h.Check("driver", h.Status.SKIP, detail=f"{_smi_failure(result, budget)}: containers have no driver"))
    elif not result.ok:
        add(h.Check("driver", h.Status.FAIL, (_smi_failure(result, budget),)))
    else:
        try:
            report = parse_query(result.stdout)
            add(h.Check("driver", h.Status.OK, detail=f"driver {report.driver_version}"))
        except SmiParseError as exc:
            add(h.Check("driver", h.Status.FAIL, (f"nvidia-smi -q -x unreadable: {exc}",)))

    if report is not None:
        add(h.check_count(expect, report))
        add(h.check_model(expect, report))
        add(h.check_memory(report, config.policy))
        add(h.check_reset(report))
        add(h.check_persistence(report, config.policy))
        service_state = None
        if expect.nvswitch and config.fabric_manager_service:
            state = runner(["systemctl", "is-active", config.fabric_manager_service], clock.budget())
            service_state = state.stdout.strip() or ("unknown" if state.timed_out else "inactive")
        nvlsm_running = process_running(config.nvlsm_process) if expect.nvswitch and config.nvlsm_process else None
        add(h.check_fabric(expect, report, service_state, nvlsm_running))
        if expect.nvswitch or config.policy.min_nvlinks:
            budget = clock.budget()
            topo = runner([config.nvidia_smi, "topo", "-m"], budget)
            if not topo.ok:
                add(h.Check("nvlink", h.Status.FAIL, (_smi_failure(topo, budget).replace("nvidia-smi",
                                                                                          "nvidia-smi topo"),)))
            else:
                try:
                    add(h.check_nvlink(expect, parse_topology(topo.stdout), config.policy))
                except TopologyParseError as exc:
                    add(h.Check("nvlink", h.Status.FAIL, (f"nvidia-smi topo -m unreadable: {exc}",)))
    else:
        for name in ("count", "model", "ecc", "reset", "fabric", "nvlink"):
            add(h.Check(name, h.Status.SKIP, detail="no nvidia-smi report"))

    add(_xid_check(config, clock, runner, report))
    if clock.budget() <= 0:
        add(h.Check("deadline", h.Status.FAIL, (f"GPU health check ran out of time ({config.deadline:.0f} s)",)))
    return verdict


def _xid_check(config: Config, clock: Clock, runner: Runner, report: SmiReport | None) -> h.Check:
    log = runner(list(config.kernel_log_command), clock.budget())
    if log.missing:
        return h.Check("xid", h.Status.SKIP, detail=f"no kernel log reader ({log.stderr.strip()})")
    if log.timed_out or not log.ok:
        return h.Check("xid", h.Status.WARN, (f"kernel log unreadable: {log.stderr.strip() or 'timed out'}",))
    events: list[XidEvent] = parse_kernel_log(log.stdout)
    acked = _ack_time(config)
    if acked is not None:
        events = [e for e in events if (t := _epoch(e.timestamp)) is None or t > acked]
    return h.check_xids(events, report, config.policy)


def _is_char_device(path: str) -> bool:
    import stat

    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False


@dataclass
class HealthOutcome:
    node: str
    verdict: h.Verdict
    reason: str | None
    action: Action = Action.NONE
    state_before: str | None = None
    #: the node's state read back from Slurm after the action (None when nothing was done or it was unreadable)
    state_after: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "node": self.node, "healthy": self.verdict.healthy, "reason": self.reason, "action": self.action.value,
            "state_before": self.state_before, "state_after": self.state_after, "error": self.error,
            "time": int(time.time()),
            "checks": [{"name": c.name, "status": c.status.value, "findings": list(c.findings), "detail": c.detail}
                       for c in self.verdict.checks],
        }


def act(node: str, verdict: h.Verdict, config: Config, runner: Runner = run) -> HealthOutcome:
    """Drain or resume ``node`` through scontrol according to ``verdict``, and report what Slurm shows after."""
    reason = reason_text(verdict.findings) if not verdict.healthy else None
    outcome = HealthOutcome(node, verdict, reason)
    slurm = Scontrol(timeout=config.command_timeout, runner=runner)
    try:
        state: NodeState | None = slurm.node_states([node]).get(node)
    except ScontrolError as exc:
        outcome.error = str(exc)
        return outcome
    if state is None:
        outcome.error = f"scontrol printed no NodeName={node} line"
        return outcome
    outcome.state_before = state.state
    outcome.action = decide(state, reason)
    try:
        if outcome.action in (Action.DRAIN, Action.UPDATE_REASON):
            assert reason is not None
            after = slurm.drain([node], reason).get(node)
            if after is None or not after.drained or after.reason != reason:
                outcome.error = (f"asked Slurm to drain {node}, but it shows "
                                 f"{_shown(after)}")
        elif outcome.action is Action.RESUME:
            after = slurm.resume([node]).get(node)
            if after is None or after.drained:
                outcome.error = f"asked Slurm to resume {node}, but it shows {_shown(after)}"
        else:
            return outcome
    except ScontrolError as exc:
        outcome.error = str(exc)
        return outcome
    outcome.state_after = after.state if after else None
    return outcome


def _shown(node: NodeState | None) -> str:
    if node is None:
        return "no such node"
    return f"State={node.state} Reason={node.reason}" if node.reason else f"State={node.state}"


def _node_name(explicit: str | None) -> str:
    return explicit or os.environ.get("SLURMD_NODENAME") or socket.gethostname().split(".")[0]


def _save(config: Config, outcome: HealthOutcome) -> None:
    """Keep the last result for administrators and the lab summary (best effort)."""
    try:
        directory = Path(config.state_dir)
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        tmp = directory / "last.json.tmp"
        tmp.write_text(json.dumps(outcome.as_dict(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(directory / "last.json")
    except OSError:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bitten-gpu-health", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", default="check", choices=("check", "ack-xids"),
                        help="check (default), or ack-xids: ignore XIDs logged until now (after a GPU reset)")
    parser.add_argument("--mode", choices=("healthcheck", "prolog", "report"), default="healthcheck",
                        help="report only checks and prints; healthcheck and prolog also drain/resume the node")
    parser.add_argument("--node", help="Slurm node name (default: $SLURMD_NODENAME, else the short host name)")
    parser.add_argument("--node-file", default=NODE_FILE)
    parser.add_argument("--config", default=CONFIG_FILE)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    # slurmd runs health checks and prologs without a search path
    if not os.environ.get("PATH"):
        os.environ["PATH"] = SAFE_PATH
    try:
        config = Config.load(args.node_file, args.config)
    except (HealthConfigError, ValueError, TypeError) as exc:
        print(f"bitten-gpu-health: bad configuration: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "ack-xids":
        Path(config.state_dir).mkdir(mode=0o755, parents=True, exist_ok=True)
        Path(config.state_dir, "xid-ack").write_text(f"{time.time():.6f}\n", encoding="utf-8")
        print("XIDs logged until now are acknowledged and will be ignored")
        return EXIT_HEALTHY
    node = _node_name(args.node)
    verdict = evaluate(config)
    if args.mode == "report":
        outcome = HealthOutcome(node, verdict, reason_text(verdict.findings) if not verdict.healthy else None)
    else:
        outcome = act(node, verdict, config)
        _save(config, outcome)
    if args.json:
        print(json.dumps(outcome.as_dict(), indent=2))
    else:
        for check in verdict.checks:
            lines = "; ".join(check.findings) or check.detail
            print(f"{check.name:12} {check.status.value:5} {lines}".rstrip())
        print(f"{node}: {'healthy' if verdict.healthy else outcome.reason} (action: {outcome.action.value})")
        if outcome.error:
            print(f"bitten-gpu-health: {outcome.error}", file=sys.stderr)
    return EXIT_HEALTHY if verdict.healthy else EXIT_UNHEALTHY


if __name__ == "__main__":
    sys.exit(main())
