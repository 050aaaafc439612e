"""Changes that need a reboot, rolled through Slurm: in waves, never through a running job, each node gated by a
health check and a short test job before it takes work again; a node that fails stays drained with its reason.

What needs a reboot is a :class:`RebootNeed` (a host, why, and optionally how to check afterwards that the reboot
did what it was for). bitten finds BIOS settings pending on a BMC and firmware staged by an update
(``needs_from_fleet``); other layers add their own — a new OS image (provisioning), a new GPU driver or kernel
module — by handing ``Rollout.run`` needs with their ``why`` and ``verify``. How a node is restarted is a
:class:`Rebooter`: Slurm's own (``SlurmReboot``, the node's RebootProgram) or the node's BMC (``BmcReboot``, also
what virtual nodes behind sushy-tools' libvirt driver use).

One wave (at most ``Rollout.wave_size`` nodes; waves run one after the other):

1. a maintenance reservation ``bitten-reboot-<time>-<n>`` on the wave's nodes for root (MAINT, IGNORE_JOBS):
   running jobs go on, no other new job lands on those nodes until the gate let them out;
2. ``prepare(hosts)`` (firmware updates are staged here, on the BMCs, while the nodes may still be busy);
3. the reboot: ``scontrol reboot ASAP nextstate=RESUME reason="bitten: reboot: <why>" <node>`` — Slurm drains the
   node, waits for its jobs to end, reboots it and returns it to service inside the reservation when it registers
   again; or (BMC) drain, wait until the node's jobs ended, restart through the BMC, resume when it is back;
4. each node is back when Slurm reports a later BootTime, the node responds, and no reboot is pending (a node
   its health check drained at start-up fails the gate with that reason); ``reboot_timeout_s`` counts from the
   moment its jobs have ended (``drain_timeout_s`` bounds that wait; 0: as long as they run). A node that comes
   back without its configuration (:class:`Reconverge`: a stateless node PXE-boots its image with its identity
   only, no munge key, no slurm.conf) is converged first, once it reported up after the reboot: Slurm sees it
   back only after that, and ``reboot_timeout_s`` counts again from the end of the converge;
5. the gate: the need's ``verify()`` (e.g. no BIOS value pending any more, the firmware version expected) and a
   test job ``srun --reservation=<it> --nodelist=<node> <gate command>`` (the GPU health check in report mode on
   GPU nodes, ``/bin/true`` elsewhere);
6. a node that passes leaves the reservation and takes work; one that fails is drained with
   ``bitten: <why>: <what failed>`` and stays drained. After a wave, when more than ``max_failures`` nodes failed,
   no further wave starts.

Nothing here acts on a value it did not read: a node Slurm does not know, or whose state cannot be read, is
reported and not rebooted; every scontrol change is read back.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bitten.core.process import Result
from bitten.core.process import run as run_process
from bitten.core.recap import failures
from bitten.core.recap import parse as parse_recap
from bitten.core.scontrol import NodeState, ReasonPrefix, Scontrol, ScontrolError, parse_nodes
from bitten.site.model import RolloutSettings

LOG = logging.getLogger(__name__)
PREFIX = ReasonPrefix("bitten:")
#: flags that say a reboot is still on its way (scontrol prints them after the base state)
REBOOTING = frozenset({"REBOOT_REQUESTED", "REBOOT_ISSUED", "REBOOT", "POWERING_UP", "POWER_UP"})
#: flags that say slurmd does not answer (or is not meant to)
SILENT = frozenset({"NOT_RESPONDING", "NO_RESPOND", "FAIL", "FUTURE"})
#: flags that say the node is not there for work
GONE = SILENT | {"DOWN"}
BUSY = frozenset({"ALLOCATED", "MIXED", "COMPLETING"})
_BOOT = re.compile(r"^\s*NodeName=(?P<name>\S+).*?\bBootTime=(?P<boot>\S+)", re.M)


@dataclass(frozen=True)
class RebootNeed:
    """One node that needs a reboot, why (for the drain reason and the report), and how to check it took."""

    host: str
    why: str
    #: after the reboot: None when the reboot did what it was for, else what is still wrong
    verify: Callable[[], str | None] | None = field(default=None, compare=False)


def merge_needs(needs: Sequence[RebootNeed]) -> list[RebootNeed]:
    """One need per host (what ``Rollout.run`` takes), sorted: the whys joined with "; " in the order given, and a
    verify that runs each of theirs (every problem reported)."""
    grouped: dict[str, list[RebootNeed]] = {}
    for need in needs:
        grouped.setdefault(need.host, []).append(need)
    out = []
    for host, group in sorted(grouped.items()):
        if len(group) == 1:
            out.append(group[0])
            continue
        checks = [n.verify for n in group if n.verify is not None]

        def verify(checks: list[Callable[[], str | None]] = checks) -> str | None:
            problems = [p for p in (check() for check in checks) if p]
            return "; ".join(problems) or None

        out.append(RebootNeed(host, "; ".join(n.why for n in group), verify if checks else None))
    return out


class Rebooter(Protocol):
    """How a wave's nodes are restarted (the reservation and the gate are the rollout's)."""

    method: str

    def reboot(self, slurm: Scontrol, host: str, reason: str) -> None:
        """Start the reboot of ``host``; never repeated blindly (a reboot is not idempotent)."""
        ...


class SlurmReboot:
    """``scontrol reboot ASAP nextstate=RESUME``: Slurm waits for the node's jobs, then runs its RebootProgram."""

    method = "slurm"

    def reboot(self, slurm: Scontrol, host: str, reason: str) -> None:
        slurm.run("reboot", "ASAP", "nextstate=RESUME", f"reason={reason}", host)


class BmcReboot:
    """Drained and idle first, then a restart through the node's BMC (``restart(host)``: e.g. a ForceRestart
    through bitten.hardware.Node); the rollout resumes the node when Slurm sees it back."""

    method = "bmc"

    def __init__(self, restart: Callable[[str], None]) -> None:
        self.restart = restart

    def reboot(self, slurm: Scontrol, host: str, reason: str) -> None:
        self.restart(host)


@dataclass(frozen=True)
class Reconverge:
    """The nodes that come back from a reboot without the configuration the playbooks gave them, and how to give
    it back: once ``booted_since(host, t)`` (the node reported up after wall-clock time ``t``, the reboot) holds,
    ``run(hosts)`` converges those hosts and returns host -> what failed (a host missing from it converged)."""

    hosts: frozenset[str]
    booted_since: Callable[[str, float], bool]
    run: Callable[[list[str]], dict[str, str]]
    wall: Callable[[], float] = time.time


def command_converge(argv: Sequence[str], timeout: float,
                     runner: Callable[[Sequence[str], float], Result] = run_process
                     ) -> Callable[[list[str]], dict[str, str]]:
    """``Reconverge.run`` as a command (``bitten_rollout.converge``, e.g. ansible-playbook ... site.yml) with
    ``--limit host,...`` appended: a host whose PLAY RECAP shows failed or unreachable tasks, or that has no recap
    line when the command failed, did not converge."""

    def converge(hosts: list[str]) -> dict[str, str]:
        result = runner([*argv, "--limit", ",".join(hosts)], timeout)
        recaps = parse_recap(result.stdout)
        why = failures(result.stdout)
        tail = " / ".join((result.stderr.strip() or result.stdout.strip()).splitlines()[-3:])
        errors: dict[str, str] = {}
        for host in hosts:
            recap = recaps.get(host)
            if result.timed_out:
                errors[host] = f"the converge ({argv[0]}) did not finish within {timeout:g} s"
            elif result.missing:
                errors[host] = f"the converge could not start: {result.stderr.strip()}"
            elif recap is not None and recap.bad:
                errors[host] = (f"the converge ({argv[0]}) failed on it: {recap.failed} failed, "
                                f"{recap.unreachable} unreachable" + (f" ({why[host]})" if host in why else ""))
            elif recap is None and not result.ok:
                errors[host] = f"the converge ({argv[0]}) failed (exit {result.returncode}): {tail or 'no output'}"
            elif recap is None:
                errors[host] = f"the converge ({argv[0]}) did not run on it (no PLAY RECAP line for it)"
        return errors

    return converge


#: runs the gate's test job: argv and a time limit; exit 0 passes (bitten.core.process.run, or a test's stand-in)
JobRunner = Callable[[Sequence[str], float], "JobResult"]


@dataclass(frozen=True)
class JobResult:
    ok: bool
    output: str


def srun_runner(argv: Sequence[str], timeout: float) -> JobResult:
    result = run_process(argv, timeout)
    tail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-3:]
    if result.timed_out:
        return JobResult(False, f"no result within {timeout:g} s")
    return JobResult(result.ok, " / ".join(tail))


@dataclass
class NodeOutcome:
    host: str
    why: str
    wave: int
    #: done (rebooted, gated, back in service), failed (drained with the reason), held (left alone: drained by
    #: someone else, or down), skipped (no wave reached it)
    state: str = "skipped"
    detail: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {"host": self.host, "why": self.why, "wave": self.wave, "state": self.state, "detail": self.detail,
                "seconds": round(self.seconds, 1)}


@dataclass
class RolloutResult:
    nodes: list[NodeOutcome]
    waves: list[list[str]]
    #: why the rollout stopped before its last wave, if it did
    stopped: str | None = None

    @property
    def failed(self) -> list[NodeOutcome]:
        return [n for n in self.nodes if n.state == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed and self.stopped is None

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "waves": self.waves, "stopped": self.stopped,
                "nodes": [n.as_dict() for n in self.nodes]}


def waves_of(hosts: Sequence[str], size: int) -> list[list[str]]:
    """The hosts in waves of ``size``, in the order given (callers sort)."""
    return [list(hosts[i:i + size]) for i in range(0, len(hosts), size)]


def gate_command(settings: RolloutSettings, health_check_program: str | None, gpu: bool) -> list[str]:
    if settings.gate_command:
        return list(settings.gate_command)
    if gpu and health_check_program:
        return [health_check_program, "--mode", "report"]
    return ["/bin/true"]


class Rollout:
    """Runs the waves (see the module docstring). ``gate_commands`` maps a host to its test job's command."""

    def __init__(self, slurm: Scontrol, settings: RolloutSettings, rebooter: Rebooter | None = None,
                 gate_commands: Callable[[str], Sequence[str]] | None = None, jobs: JobRunner = srun_runner,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 poll: float = 2.0, progress: Callable[[str], None] | None = None,
                 reconverge: Reconverge | None = None) -> None:
        self.slurm = slurm
        self.settings = settings
        self.rebooter: Rebooter = rebooter or SlurmReboot()
        self.gate_commands = gate_commands or (lambda _host: ["/bin/true"])
        self.jobs = jobs
        self._sleep = sleep
        self._clock = clock
        self.poll = poll
        self._progress = progress or (lambda text: LOG.info("%s", text))
        self.reconverge = reconverge

    # --- reading Slurm ----------------------------------------------------------------------------------
    def _show(self, hosts: Sequence[str]) -> tuple[dict[str, NodeState], dict[str, str]]:
        text = self.slurm.run("show", "node", "-o", ",".join(hosts))
        states = parse_nodes(text)
        boots = {m["name"]: m["boot"] for m in _BOOT.finditer(text)}
        return states, boots

    # --- one run ----------------------------------------------------------------------------------------
    def run(self, needs: Sequence[RebootNeed], prepare: Callable[[list[str]], dict[str, str]] | None = None
            ) -> RolloutResult:
        """Reboot the nodes of ``needs`` (one need per host: merge whys first) in waves.

        ``prepare(hosts)`` runs at the start of each wave, before the reboots; it returns host -> error for the
        nodes it could not prepare (they are not rebooted, and fail)."""
        by_host: dict[str, RebootNeed] = {}
        for need in needs:
            if need.host in by_host:
                raise ValueError(f"two reboot needs for {need.host}: merge them into one")
            by_host[need.host] = need
        hosts = sorted(by_host)
        waves = waves_of(hosts, self.settings.wave_size)
        outcomes = {h: NodeOutcome(h, by_host[h].why, wave=i + 1) for i, wave in enumerate(waves) for h in wave}
        result = RolloutResult(nodes=[outcomes[h] for h in hosts], waves=waves)
        failures = 0
        for index, wave in enumerate(waves, start=1):
            self._progress(f"wave {index}/{len(waves)}: {', '.join(wave)}")
            try:
                self._wave(index, wave, by_host, outcomes, prepare)
            except ScontrolError as exc:
                result.stopped = f"wave {index}: Slurm could not be asked or did not answer: {exc}"
                for host in wave:
                    if outcomes[host].state == "skipped":
                        outcomes[host].state, outcomes[host].detail = "failed", f"interrupted: {exc}"
                break
            failures = len(result.failed)
            if failures > self.settings.max_failures and index < len(waves):
                result.stopped = (f"{failures} node(s) failed by wave {index} (max_failures "
                                  f"{self.settings.max_failures}): the remaining waves did not start")
                break
        return result

    def _wave(self, index: int, wave: list[str], needs: dict[str, RebootNeed], outcomes: dict[str, NodeOutcome],
              prepare: Callable[[list[str]], dict[str, str]] | None) -> None:
        start = self._clock()
        states, boots = self._show(wave)
        for host in wave:
            state = states.get(host)
            if state is None:
                self._fail(outcomes[host], "Slurm does not know this node: not rebooted", drain=False)
            elif state.drained and not PREFIX.owns(state):
                # someone drained it for a reason of their own: resuming it after a reboot would undo that
                outcomes[host].state = "held"
                outcomes[host].detail = f"drained by someone else ({state.reason or 'no reason'}): not rebooted"
            elif state.flags & GONE:
                outcomes[host].state = "held"
                outcomes[host].detail = f"Slurm shows it {state.state}: not rebooted until it answers"
        todo = [h for h in wave if outcomes[h].state == "skipped"]
        if not todo:
            return
        reservation = f"bitten-reboot-{time.strftime('%Y%m%d%H%M%S')}-{index}"
        self.slurm.run("create", "reservation", f"ReservationName={reservation}", f"Nodes={','.join(todo)}",
                       "StartTime=now", "Duration=UNLIMITED", "Users=root", "Flags=MAINT,IGNORE_JOBS")
        inside = list(todo)
        try:
            if prepare is not None:
                for host, error in prepare(list(todo)).items():
                    if host in todo:
                        self._fail(outcomes[host], f"not prepared: {error}", drain=False)
                todo = [h for h in todo if outcomes[h].state == "skipped"]
            asked: dict[str, float] = {}
            for host in todo:
                reason = PREFIX.reason(f"reboot: {needs[host].why}")
                if self.rebooter.method == "bmc":
                    self.slurm.drain([host], reason)
                else:
                    asked[host] = self._wall()
                    self.rebooter.reboot(self.slurm, host, reason)
            self._progress(f"wave {index}: {len(todo)} node(s) asked to reboot ({self.rebooter.method}); "
                           "waiting for their jobs to end and for them to come back")
            back = self._wait(todo, boots, outcomes, needs, asked)
            for host in back:
                detail = self._gate(host, reservation, needs[host])
                if detail is None:
                    outcomes[host].state = "done"
                    outcomes[host].detail = "rebooted, gate passed, back in service"
                else:
                    self._fail(outcomes[host], detail, drain=True)
                inside.remove(host)
                self._leave(reservation, inside)
                outcomes[host].seconds = self._clock() - start
        finally:
            if inside:
                self._leave(reservation, [])

    def _leave(self, reservation: str, remaining: list[str]) -> None:
        if remaining:
            self.slurm.run("update", f"ReservationName={reservation}", f"Nodes={','.join(remaining)}")
        else:
            self.slurm.run("delete", f"ReservationName={reservation}")

    def _wall(self) -> float:
        return self.reconverge.wall() if self.reconverge is not None else time.time()

    def _wait(self, hosts: list[str], boots: dict[str, str], outcomes: dict[str, NodeOutcome],
              needs: dict[str, RebootNeed], rebooted_at: dict[str, float]) -> list[str]:
        """Wait until each node is back (converging those of ``self.reconverge`` once they reported up); nodes that
        time out fail. ``rebooted_at``: host -> wall-clock time its reboot was asked for (filled in here for the
        BMC's restarts). Returns the nodes back, in the order they came."""
        settings = self.settings
        pending = set(hosts)
        idle_since: dict[str, float] = {}
        asked = self._clock()
        back: list[str] = []
        restarted: set[str] = set()
        to_converge = self.reconverge.hosts if self.reconverge is not None else frozenset()
        converged: set[str] = set()
        revived: set[str] = set()
        while pending:
            states, now_boots = self._show(sorted(pending))
            now = self._clock()
            ready: list[str] = []
            for host in sorted(pending):
                state = states.get(host)
                if state is None:
                    continue
                flags = state.flags
                booted = now_boots.get(host) not in (None, "None", boots.get(host))
                if not booted and host not in idle_since and not flags & BUSY:
                    idle_since[host] = now  # its jobs have ended: the reboot clock starts
                if self.rebooter.method == "bmc" and host not in restarted and host in idle_since:
                    rebooted_at[host] = self._wall()
                    self.rebooter.reboot(self.slurm, host, PREFIX.reason(f"reboot: {needs[host].why}"))
                    restarted.add(host)
                if host in to_converge and host not in converged:
                    # its slurmd has neither key nor configuration until the playbooks ran: Slurm cannot see it back
                    if (host in rebooted_at and self.reconverge is not None
                            and self.reconverge.booted_since(host, rebooted_at[host])):
                        ready.append(host)
                        continue
                    booted = False
                if (booted and self.rebooter.method == "bmc" and "DOWN" in flags and not flags & (REBOOTING | SILENT)
                        and state.drained and PREFIX.owns(state) and host not in revived):
                    # away longer than SlurmdTimeout, so Slurm set it DOWN; its slurmd answers again from the new
                    # boot, but ReturnToService=1 returns only nodes whose reason is Slurm's own "Not responding",
                    # not one bitten drained: resumed here (the reservation keeps jobs off until the gate), read again
                    revived.add(host)
                    self.slurm.resume([host])
                    continue
                if booted and not flags & (REBOOTING | GONE):
                    if self.rebooter.method == "bmc" and state.drained and PREFIX.owns(state):
                        self.slurm.resume([host])
                    pending.discard(host)
                    back.append(host)
                    continue
                if host not in idle_since and settings.drain_timeout_s and now - asked > settings.drain_timeout_s:
                    pending.discard(host)
                    self._fail(outcomes[host], f"its jobs still ran after {settings.drain_timeout_s:g} s: not "
                               "rebooted", drain=True)
                elif host in idle_since and now - idle_since[host] > settings.reboot_timeout_s:
                    pending.discard(host)
                    seen = (f"Slurm shows {state.state}{f': {state.reason}' if state.reason else ''}"
                            + ("; it did not report up to the provisioner"
                               if host in to_converge and host not in converged else ""))
                    self._fail(outcomes[host], f"not back within {settings.reboot_timeout_s:g} s of the "
                               f"{'converge' if host in converged else 'reboot'} ({seen})", drain=True)
            if ready and self.reconverge is not None:
                self._progress(f"{', '.join(ready)}: back from PXE with its identity only; converging")
                errors = self.reconverge.run(ready)
                done = self._clock()
                for host in ready:
                    if host in errors:
                        pending.discard(host)
                        self._fail(outcomes[host], f"back after the reboot, but not converged: {errors[host]}",
                                   drain=True)
                    else:
                        converged.add(host)
                        idle_since[host] = done  # Slurm should see it back now: the reboot clock starts again
                continue
            if pending:
                self._sleep(self.poll)
        return back

    def _gate(self, host: str, reservation: str, need: RebootNeed) -> str | None:
        states, _boots = self._show([host])
        state = states.get(host)
        if state is None:
            return "Slurm lost the node after its reboot"
        if state.drained and not PREFIX.owns(state):
            return f"drained at start-up ({state.reason or 'no reason given'})"
        if need.verify is not None:
            problem = need.verify()
            if problem:
                return f"after the reboot: {problem}"
        minutes = max(1, math.ceil(self.settings.gate_timeout_s / 60))
        argv = [*self.settings.srun, f"--reservation={reservation}", f"--nodelist={host}", "--nodes=1",
                "--ntasks=1", f"--time={minutes}", "--job-name=bitten-gate", *self.gate_commands(host)]
        job = self.jobs(argv, self.settings.gate_timeout_s + 30)
        if not job.ok:
            return f"test job failed: {job.output or 'no output'}"
        return None

    def _fail(self, outcome: NodeOutcome, detail: str, drain: bool) -> None:
        outcome.state, outcome.detail = "failed", detail
        if drain:
            reason = PREFIX.reason(f"{outcome.why}: {detail}")
            after = self.slurm.drain([outcome.host], reason).get(outcome.host)
            if after is None or not after.drained:
                outcome.detail += "; the drain could not be read back"
        self._progress(f"{outcome.host}: failed: {detail}")
