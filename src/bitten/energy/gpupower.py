"""GPU power and energy from DCGM, into the ledger as a channel with provenance.

Where a GPU driver runs, the gpu role runs NVIDIA's dcgm-exporter (``gpu_dcgm_exporter_listen``, port 9400), whose
``/metrics`` (Prometheus text format) carries one sample per GPU (labels ``gpu``, ``UUID``, ...) of

- ``DCGM_FI_DEV_POWER_USAGE`` (gauge, W): the GPU's power draw;
- ``DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION`` (counter, mJ since the driver loaded).

The same rules as for the BMCs (bitten.energy.nodepower): the text is parsed with prometheus_client's parser; a
value that is not finite, negative, or (power) above the GPU's plausible maximum is garbage (counted, not used); an
answer that is not the exporter's, or that has no GPU at all, fails the poll; a node without a good reading for
``stale_after_s`` is stale (an alarm, nothing recorded). A node records only when every GPU it reported has a good
value: a sum over some of its GPUs would understate it. The ledger's ``gpu_energy`` channel gets, per node, the sum
of its GPUs' energy counters (kWh; a counter that goes backwards, as after a driver reload, is a gap in the ledger)
or, without counters, their power (kW, integrated by the ledger). One slow or broken node never delays the others
(a pool, a timeout per request).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from bitten.cooling.ledger import Ledger
from bitten.energy.polling import PollState, alarms, settle

log = logging.getLogger("bitten.energy.gpupower")

POWER = "DCGM_FI_DEV_POWER_USAGE"
ENERGY = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"
#: millijoules in a kilowatt-hour
MJ_PER_KWH = 3.6e9
#: the most an answer may be (dcgm-exporter's page for 8 GPUs and every field is well under 1 MiB)
MAX_BYTES = 4 * 1024 * 1024


class ExporterError(RuntimeError):
    """The node answered something that is not dcgm-exporter's metrics."""


@dataclass
class GpuReading:
    node: str
    timestamp: float
    #: GPU index -> W, and -> mJ since the driver loaded (only the good values)
    power_w: dict[str, float] = field(default_factory=dict)
    energy_mj: dict[str, float] = field(default_factory=dict)
    #: GPUs that reported anything, and what was garbage ("gpu 3 DCGM_FI_DEV_POWER_USAGE=nan")
    gpus: set[str] = field(default_factory=set)
    garbage: list[str] = field(default_factory=list)

    @property
    def total_w(self) -> float | None:
        """The node's GPU power, when every GPU it reported has a good power value."""
        return sum(self.power_w.values()) if self.gpus and set(self.power_w) == self.gpus else None

    @property
    def total_kwh(self) -> float | None:
        """The node's GPU energy counter (kWh), when every GPU it reported has a good counter."""
        if not self.gpus or set(self.energy_mj) != self.gpus:
            return None
        return sum(self.energy_mj.values()) / MJ_PER_KWH


def parse(text: str, node: str, max_w: float, timestamp: float) -> GpuReading:
    """dcgm-exporter's /metrics as a GpuReading; ExporterError when it is not that or carries no GPU."""
    reading = GpuReading(node, timestamp)
    try:
        families = list(text_string_to_metric_families(text))
    except (ValueError, TypeError, IndexError) as exc:
        raise ExporterError(f"not Prometheus text format: {exc}") from None
    for family in families:
        # by the family's name: the parser names a counter's samples <name>_total
        if family.name not in (POWER, ENERGY):
            continue
        for sample in family.samples:
            if sample.name not in (family.name, f"{family.name}_total"):
                continue
            gpu = sample.labels.get("gpu")
            if gpu is None:
                raise ExporterError(f"{family.name} without a gpu label: not dcgm-exporter's metrics")
            reading.gpus.add(gpu)
            value = float(sample.value)
            high = max_w if family.name == POWER else math.inf
            if not math.isfinite(value) or value < 0 or value > high:
                reading.garbage.append(f"gpu {gpu} {family.name}={value:g}")
                continue
            (reading.power_w if family.name == POWER else reading.energy_mj)[gpu] = value
    if not reading.gpus:
        raise ExporterError(f"neither {POWER} nor {ENERGY} in the answer: is dcgm-exporter publishing them?")
    return reading


def fetch(url: str, timeout: float, ca_file: str | None = None) -> str:
    """GET the exporter's page (bounded in time and size; https verified, against ``ca_file`` when given)."""
    import requests  # imported here, not at the top: only the poller needs it, and start-up stays light

    with requests.get(url, timeout=timeout, stream=True, verify=ca_file or True) as response:
        response.raise_for_status()
        body = response.raw.read(MAX_BYTES + 1, decode_content=True)
    if len(body) > MAX_BYTES:
        raise ExporterError(f"answer larger than {MAX_BYTES} bytes")
    return bytes(body).decode("utf-8", errors="replace")


#: a node's poll state (bitten.energy.polling)
GpuState = PollState[GpuReading]


class GpuPowerPoller:
    """Poll every GPU node's dcgm-exporter in parallel, check, record into the ledger; per-node state for metrics
    and alarms."""

    def __init__(self, urls: dict[str, str], ledger: Ledger, *, max_w: dict[str, float] | None = None,
                 stale_after_s: float = 120.0, timeout_s: float = 5.0,
                 get: Callable[[str, float], str] = fetch, clock: Callable[[], float] = time.time,
                 workers: int = 16) -> None:
        self.urls = urls
        self.ledger = ledger
        self.max_w = max_w or {}
        self.stale_after_s = stale_after_s
        self.timeout_s = timeout_s
        self.get = get
        self.clock = clock
        self.started = clock()
        self.nodes = {name: GpuState() for name in urls}
        self.pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(urls))), thread_name_prefix="gpupower")

    def _one(self, node: str) -> tuple[str, GpuReading | None, str]:
        try:
            text = self.get(self.urls[node], self.timeout_s)
            reading = parse(text, node, self.max_w.get(node, 2000.0), self.clock())
        except Exception as exc:  # a node's failure is that node's, never the loop's
            return node, None, f"{exc.__class__.__name__}: {exc}"[:300]
        if reading.total_kwh is None and reading.total_w is None:
            return node, None, f"no good value for every GPU ({'; '.join(reading.garbage) or 'values missing'})"
        return node, reading, ""

    def poll(self) -> None:
        results = list(self.pool.map(self._one, sorted(self.urls)))
        now = self.clock()
        with self.ledger.batch():
            settle(self.nodes, results, now, what="dcgm-exporter", log=log, garbage=lambda r: len(r.garbage),
                   record=self._record)

    def _record(self, r: GpuReading) -> None:
        url = self.urls[r.node]
        kwh, watts = r.total_kwh, r.total_w
        if kwh is not None:
            # the counters cannot grow faster than every GPU at its plausible maximum (a larger step is a gap)
            max_rate = len(r.gpus) * self.max_w.get(r.node, 2000.0) / 3.6e6
            self.ledger.record("gpu_energy", r.node, "counter", r.timestamp, kwh, max_rate=max_rate)
            self.ledger.describe("gpu_energy", r.node, f"dcgm-exporter {url} {ENERGY} (sum of {len(r.gpus)} "
                                 "GPUs)", r.timestamp)
        elif watts is not None:
            self.ledger.record("gpu_energy", r.node, "power", r.timestamp, watts / 1000)
            self.ledger.describe("gpu_energy", r.node, f"dcgm-exporter {url} {POWER} (sum of {len(r.gpus)} GPUs)",
                                 r.timestamp)

    def alarms(self) -> dict[str, str]:
        return alarms(self.nodes, self.clock(), self.stale_after_s, self.started)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
