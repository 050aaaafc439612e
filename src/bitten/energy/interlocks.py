"""Interlocks: what always wins over an energy policy, read through small documented interfaces.

- Cooling: the cooling agent's active alarms, from its Prometheus metrics (``bitten_cooling_alarm_active{loop,
  kind}``, documented in bitten.cooling.metrics) at its /metrics URL. The controller changes nothing on the nodes of a
  loop with an active alarm (the agent may have drained or capped them) nor on that loop's CDU, and releases no held
  jobs while any loop is alarmed. An agent that does not answer, or answers something that is not its metrics, makes
  the cooling state unknown: then nothing changes at all.
- GPU health: a node that Slurm shows drained or down (the GPU health check drains with reason ``gpu-health:``;
  cooling with ``bitten-cooling:``), or that Slurm cannot report, is left alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests
from prometheus_client.parser import text_string_to_metric_families

from bitten.energy.slurm import Slurm, SlurmError

ALARM_METRIC = "bitten_cooling_alarm_active"


@dataclass
class Interlocks:
    #: None: the cooling state is unknown (the reason says why); else loop -> active alarm kinds
    cooling: dict[str, list[str]] | None
    cooling_reason: str = ""
    #: node -> why it is left alone (drained, down, health check, unknown)
    nodes: dict[str, str] = field(default_factory=dict)
    #: None: Slurm did not answer (every node is then left alone)
    slurm_reason: str = ""

    @property
    def cooling_known(self) -> bool:
        return self.cooling is not None

    def loop_alarmed(self, loop: str | None) -> bool:
        return self.cooling is None or bool(loop and self.cooling.get(loop))

    @property
    def any_cooling_alarm(self) -> bool:
        return self.cooling is None or any(self.cooling.values())

    def as_dict(self) -> dict[str, object]:
        return {"cooling": self.cooling, "cooling_reason": self.cooling_reason, "nodes": self.nodes,
                "slurm_reason": self.slurm_reason}


def parse_alarms(text: str) -> dict[str, list[str]]:
    """loop -> active alarm kinds from the cooling agent's metrics; ValueError if they are not its metrics."""
    found: dict[str, list[str]] = {}
    seen = False
    for family in text_string_to_metric_families(text):
        if family.name == ALARM_METRIC:
            seen = True
            for sample in family.samples:
                if sample.value == 1:
                    found.setdefault(sample.labels.get("loop", "?"), []).append(sample.labels.get("kind", "?"))
        elif family.name.startswith("bitten_cooling_"):
            seen = True
    if not seen:
        raise ValueError("not the cooling agent's metrics (no bitten_cooling_ metric)")
    return {loop: sorted(kinds) for loop, kinds in found.items()}


class CoolingAlarms:
    def __init__(self, url: str | None, *, timeout: float = 5.0, session: requests.Session | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self.session = session or requests.Session()

    def read(self) -> tuple[dict[str, list[str]] | None, str]:
        if self.url is None:
            return {}, "no cooling agent on this site"
        try:
            resp = self.session.get(self.url, timeout=self.timeout)
            resp.raise_for_status()
            return parse_alarms(resp.text), ""
        except (requests.RequestException, ValueError) as exc:
            return None, f"cooling agent {self.url}: {exc.__class__.__name__}: {exc}"[:300]


def node_interlocks(slurm: Slurm, nodes: list[str]) -> tuple[dict[str, str], str]:
    try:
        states = slurm.nodes()
    except SlurmError as exc:
        return {n: "Slurm did not report the node" for n in nodes}, str(exc)
    out = {}
    for name in nodes:
        st = states.get(name)
        if st is None:
            out[name] = "not in scontrol's output"
        elif st.drained or "NOT_RESPONDING" in st.flags or "FAIL" in st.flags:
            out[name] = f"{st.state}" + (f" ({st.reason})" if st.reason else "")
    return out, ""


def read_interlocks(cooling: CoolingAlarms, slurm: Slurm, nodes: list[str],
                    clock: Callable[[], float] = time.time) -> Interlocks:
    alarms, why = cooling.read()
    node_locks, slurm_why = node_interlocks(slurm, nodes)
    return Interlocks(alarms, why, node_locks, slurm_why)
