"""Job traces in the Standard Workload Format (SWF) of the Parallel Workloads Archive, and a generator.

SWF: one job per line, 18 whitespace-separated integer fields, -1 where unknown; header lines start with ``;``
(``; UnixStartTime: <epoch>``, ``; MaxProcs:``, ``; Queues:``, ``; Partitions:``, ``; Note:``). The fields:
1 job number, 2 submit time (s from UnixStartTime), 3 wait time, 4 run time, 5 allocated processors, 6 average CPU
time, 7 used memory, 8 requested processors, 9 requested time, 10 requested memory, 11 status, 12 user id, 13 group
id, 14 executable number, 15 queue number, 16 partition number, 17 preceding job, 18 think time.

How bitten reads them (and writes its own traces):
- partition 1 is the GPU partition, where processors count GPUs; partition 2 the CPU partition, where they count
  nodes (other partitions are skipped and counted);
- queue 1 is an ordinary QoS, queue 2 a flexible one (its jobs may be held);
- the executable number is the job's power class: 1..4 = 450, 650, 850, 1000 W per GPU uncapped (-1: 850 W);
- run time is the run time at full power; requested time bounds it.
Wait times in a trace are ignored: the simulator schedules the jobs itself.

:func:`generate` makes a trace for a site (deterministic for a seed): Poisson arrivals with a daily and weekly
rhythm, GPU counts from 1 to 64, log-normal run times (median 1.5 h, at most 48 h), a fifth of the GPU jobs
flexible, sized to a target GPU utilisation. These shapes are ASSUMPTIONS, not Bitten's workload.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

#: executable number -> uncapped power per GPU (W)
POWER_CLASSES: dict[int, float] = {1: 450.0, 2: 650.0, 3: 850.0, 4: 1000.0}
DEFAULT_CLASS = 3
GPU_PARTITION, CPU_PARTITION = 1, 2
NORMAL_QUEUE, FLEXIBLE_QUEUE = 1, 2


@dataclass
class Jobs:
    """A job trace as columns (one row per job), times in Unix seconds."""

    id: npt.NDArray[np.int64]
    submit: npt.NDArray[np.float64]
    runtime: npt.NDArray[np.float64]      # at full power
    size: npt.NDArray[np.int64]           # GPUs (GPU partition) or nodes (CPU partition)
    partition: npt.NDArray[np.int64]
    queue: npt.NDArray[np.int64]
    power_class: npt.NDArray[np.int64]
    user: npt.NDArray[np.int64]
    group: npt.NDArray[np.int64]
    requested: npt.NDArray[np.float64]
    header: dict[str, str] = field(default_factory=dict)
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.id)

    @property
    def flexible(self) -> npt.NDArray[np.bool_]:
        return self.queue == FLEXIBLE_QUEUE  # type: ignore[no-any-return]

    def demand_w(self) -> npt.NDArray[np.float64]:
        classes = np.where(np.isin(self.power_class, list(POWER_CLASSES)), self.power_class, DEFAULT_CLASS)
        lookup = np.zeros(max(POWER_CLASSES) + 1)
        for k, w in POWER_CLASSES.items():
            lookup[k] = w
        return lookup[classes]


class SwfError(ValueError):
    pass


def parse(text: str, source: str = "<swf>", max_gpus: int | None = None) -> Jobs:
    """Read an SWF trace; a malformed line is an error naming the line; jobs that cannot run are skipped."""
    header: dict[str, str] = {}
    rows: list[list[int]] = []
    skipped = 0
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith(";"):
            key, sep, value = line[1:].partition(":")
            if sep:
                header.setdefault(key.strip(), value.strip())
            continue
        parts = line.split()
        if len(parts) != 18:
            raise SwfError(f"{source}:{number}: expected 18 fields, got {len(parts)}")
        try:
            values = [int(float(p)) for p in parts]
        except ValueError:
            raise SwfError(f"{source}:{number}: fields must be numbers") from None
        size = values[4] if values[4] > 0 else values[7]
        if values[1] < 0 or values[3] <= 0 or size <= 0 or values[15] not in (GPU_PARTITION, CPU_PARTITION) \
                or (max_gpus is not None and values[15] == GPU_PARTITION and size > max_gpus):
            skipped += 1
            continue
        values[4] = size
        rows.append(values)
    try:
        start = float(header.get("UnixStartTime", "0"))
    except ValueError:
        raise SwfError(f"{source}: UnixStartTime {header['UnixStartTime']!r} is not a number") from None
    a = np.array(rows, dtype=np.int64).reshape(-1, 18)
    order = np.argsort(a[:, 1], kind="stable")
    a = a[order]
    return Jobs(id=a[:, 0], submit=a[:, 1].astype(np.float64) + start, runtime=a[:, 3].astype(np.float64),
                size=a[:, 4], partition=a[:, 15], queue=np.where(a[:, 14] > 0, a[:, 14], NORMAL_QUEUE),
                power_class=a[:, 13], user=a[:, 11], group=a[:, 12], requested=a[:, 8].astype(np.float64),
                header=header, skipped=skipped)


def load(path: Path, max_gpus: int | None = None) -> Jobs:
    return parse(path.read_text(), str(path), max_gpus)


def dump(jobs: Jobs, start: float, computer: str = "bitten (generated)", notes: Iterable[str] = ()) -> str:
    lines = ["; Version: 2.2", f"; Computer: {computer}", f"; UnixStartTime: {int(start)}",
             f"; MaxJobs: {len(jobs)}", f"; MaxRecords: {len(jobs)}",
             "; Queues: 1 normal QoS; 2 flexible QoS (may be held by the energy controller)",
             "; Partitions: 1 gpu (processors are GPUs); 2 cpu (processors are nodes)",
             "; Note: executable number = power class, 1..4 = 450, 650, 850, 1000 W per GPU uncapped",
             "; Note: run time is the run time at full power; wait times are left to the simulator (-1)",
             *(f"; Note: {n}" for n in notes)]
    for i in range(len(jobs)):
        fields = [int(jobs.id[i]), int(jobs.submit[i] - start), -1, int(jobs.runtime[i]), int(jobs.size[i]), -1, -1,
                  int(jobs.size[i]), int(jobs.requested[i]), -1, 1, int(jobs.user[i]), int(jobs.group[i]),
                  int(jobs.power_class[i]), int(jobs.queue[i]), int(jobs.partition[i]), -1, -1]
        lines.append(" ".join(str(f) for f in fields))
    return "\n".join(lines) + "\n"


def generate(start: float, days: float, *, gpus: int = 128, cpu_nodes: int = 32, seed: int = 1,
             utilisation: float = 0.7, flexible_share: float = 0.2, users: int = 40, groups: int = 12) -> Jobs:
    """A job trace for [start, start + days) -- the same for the same arguments."""
    rng = np.random.default_rng(seed)
    sizes = np.array([1, 2, 4, 8, 16, 32, 64])
    p = np.array([0.25, 0.2, 0.2, 0.2, 0.08, 0.05, 0.02])
    sizes, p = sizes[sizes <= gpus], p[sizes <= gpus]
    p = p / p.sum()
    median_h, sigma = 1.5, 1.2
    mean_runtime = median_h * 3600 * float(np.exp(sigma ** 2 / 2))
    rate_gpu = utilisation * gpus / (float((sizes * p).sum()) * mean_runtime)  # jobs per second
    rate_cpu = 0.5 * cpu_nodes / (2.0 * 3 * 3600) if cpu_nodes else 0.0  # half-loaded CPU partition
    horizon = days * 86400.0

    def arrivals(rate: float) -> npt.NDArray[np.float64]:
        if rate <= 0:
            return np.zeros(0)
        # thinning of a Poisson process with a daily (working hours) and weekly (weekend) rhythm
        peak = rate * 1.6
        n = rng.poisson(peak * horizon)
        t = np.sort(rng.uniform(0, horizon, n))
        hour = ((start + t + 3600) % 86400) / 3600
        weekday = ((start + t) // 86400 + 3) % 7  # 1970-01-01 was a Thursday: 0 = Monday
        shape = (1 + 0.5 * np.sin((hour - 9) / 24 * 2 * np.pi)) * np.where(weekday >= 5, 0.6, 1.1)
        keep = rng.uniform(0, 1.6, n) < shape
        return t[keep]

    t_gpu, t_cpu = arrivals(rate_gpu), arrivals(rate_cpu)
    n_gpu, n_cpu = len(t_gpu), len(t_cpu)
    runtime = np.clip(rng.lognormal(np.log(median_h * 3600), sigma, n_gpu + n_cpu), 300, 48 * 3600).round()
    size = np.r_[rng.choice(sizes, n_gpu, p=p), rng.choice([1, 2, 4], n_cpu, p=[0.6, 0.3, 0.1])]
    partition = np.r_[np.full(n_gpu, GPU_PARTITION), np.full(n_cpu, CPU_PARTITION)]
    queue = np.r_[np.where(rng.uniform(size=n_gpu) < flexible_share, FLEXIBLE_QUEUE, NORMAL_QUEUE),
                  np.full(n_cpu, NORMAL_QUEUE)]
    power_class = np.r_[rng.choice([1, 2, 3, 4], n_gpu, p=[0.15, 0.25, 0.35, 0.25]), np.full(n_cpu, -1)]
    submit = np.r_[t_gpu, t_cpu] + start
    order = np.argsort(submit, kind="stable")
    requested = np.minimum(48 * 3600, np.ceil(runtime * 1.5 / 3600) * 3600)
    return Jobs(id=np.arange(1, n_gpu + n_cpu + 1), submit=submit[order].round(), runtime=runtime[order],
                size=size[order].astype(np.int64), partition=partition[order].astype(np.int64),
                queue=queue[order].astype(np.int64), power_class=power_class[order].astype(np.int64),
                user=rng.integers(1, users + 1, n_gpu + n_cpu)[order],
                group=rng.integers(1, groups + 1, n_gpu + n_cpu)[order], requested=requested[order])
