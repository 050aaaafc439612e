"""The controller's view of Slurm: node states (for the GPU-health interlock) through bitten.core.scontrol (the one
Slurm module), a flexible QoS's pending jobs (squeue), and hold/release with read-back.

Only jobs the controller held itself are ever released (it keeps their ids); a job a user or an administrator held
stays held. Every command has a hard timeout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bitten.core.process import run
from bitten.core.scontrol import NodeState, ScontrolError, parse_nodes
from bitten.core.scontrol import Scontrol as CoreScontrol

#: squeue's reason for a job held by an operator or administrator (scontrol hold)
HELD_REASONS = frozenset({"JobHeldAdmin", "JobHeldUser"})


class SlurmError(ScontrolError):
    pass


@dataclass(frozen=True)
class PendingJob:
    job_id: str
    reason: str

    @property
    def held(self) -> bool:
        return self.reason in HELD_REASONS


class Slurm(Protocol):
    def nodes(self) -> dict[str, NodeState]: ...

    def pending(self, qos: str) -> list[PendingJob]: ...

    def hold(self, job_ids: Sequence[str]) -> None: ...

    def release(self, job_ids: Sequence[str]) -> None: ...


class Scontrol:
    def __init__(self, scontrol: Sequence[str] = ("scontrol",), squeue: Sequence[str] = ("squeue",),
                 timeout: float = 20.0) -> None:
        self.core = CoreScontrol(scontrol, timeout)
        self.squeue = list(squeue)
        self.timeout = timeout

    def _scontrol(self, *args: str) -> str:
        try:
            return self.core.run(*args)
        except ScontrolError as exc:
            raise SlurmError(str(exc)) from None

    def _run(self, argv: list[str]) -> str:
        result = run(argv, self.timeout)
        if result.missing or result.timed_out or result.returncode != 0:
            why = "no answer (killed)" if result.timed_out else f"exit {result.returncode}"
            raise SlurmError(f"{' '.join(argv)}: {why}: {(result.stderr or result.stdout).strip()[:300]}")
        return result.stdout

    def nodes(self) -> dict[str, NodeState]:
        return parse_nodes(self._scontrol("show", "node", "-o"))

    def pending(self, qos: str) -> list[PendingJob]:
        out = self._run([*self.squeue, "--noheader", "--states=PENDING", f"--qos={qos}", "--format=%i|%r"])
        jobs = []
        for line in out.splitlines():
            job_id, sep, reason = line.strip().partition("|")
            if sep and job_id:
                jobs.append(PendingJob(job_id, reason))
        return jobs

    def hold(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            self._scontrol("hold", ",".join(job_ids))

    def release(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            self._scontrol("release", ",".join(job_ids))
