"""Judging a node's GPUs: what the hardware profile promises against what the tools report.

Pure functions over parsed tool output; gathering (with time limits) and acting on Slurm live in check.py.
Every check yields a Check with a status; failures carry one short, precise line that becomes the drain reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from bitten.gpu.smi import GpuState, SmiReport, matches_type
from bitten.gpu.topology import Topology
from bitten.gpu.xid import XidEvent


class Status(Enum):
    OK = "ok"
    FAIL = "fail"
    WARN = "warn"
    SKIP = "skip"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    #: failures and warnings: one short line each, most important first
    findings: tuple[str, ...] = ()
    detail: str = ""


@dataclass(frozen=True)
class Expectation:
    """What a node's hardware profile says about its GPUs (rendered by bitten into /etc/bitten/gpu-node.json)."""

    count: int
    slurm_type: str = ""
    model: str = ""
    architecture: str = ""
    nvswitch: bool = False
    devices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    """How strict the checks are (the role's gpu_health_* settings)."""

    require_ecc: bool = True
    require_persistence: bool = False
    #: bonded NVLinks every GPU pair needs; 0 skips the topology check unless the profile has NVSwitch
    min_nvlinks: int = 0
    xid_codes: frozenset[int] | None = None


@dataclass
class Verdict:
    checks: list[Check] = field(default_factory=list)

    @property
    def findings(self) -> list[str]:
        return [f for c in self.checks if c.status is Status.FAIL for f in c.findings]

    @property
    def healthy(self) -> bool:
        return not self.findings


def _label(index: int, gpu: GpuState) -> str:
    return f"GPU{index} ({gpu.pci})"


def check_count(expect: Expectation, report: SmiReport) -> Check:
    seen = len(report.gpus)
    if seen == expect.count:
        return Check("count", Status.OK, detail=f"{seen} GPUs")
    if seen < expect.count:
        return Check("count", Status.FAIL, (f"{expect.count - seen} of {expect.count} GPUs missing "
                                            f"(nvidia-smi sees {seen})",))
    return Check("count", Status.FAIL, (f"{seen} GPUs where the profile has {expect.count}",))


def check_model(expect: Expectation, report: SmiReport) -> Check:
    if not expect.slurm_type:
        return Check("model", Status.SKIP, detail="no GPU type in the profile")
    wrong = [f"{_label(i, g)} is {g.name!r}, not {expect.slurm_type}" for i, g in enumerate(report.gpus)
             if not g.name or not matches_type(g.name, expect.slurm_type)]
    return Check("model", Status.FAIL, tuple(wrong)) if wrong else Check("model", Status.OK, detail=expect.slurm_type)


def check_memory(report: SmiReport, policy: Policy) -> Check:
    findings: list[str] = []
    warnings: list[str] = []
    for i, gpu in enumerate(report.gpus):
        label = _label(i, gpu)
        if gpu.volatile_uncorrectable:
            findings.append(f"{label}: {gpu.volatile_uncorrectable} uncorrectable ECC errors since driver load")
        if gpu.remap_failure:
            findings.append(f"{label}: row remapping failed (replace the GPU)")
        if gpu.remap_pending:
            findings.append(f"{label}: row remap pending (reset the GPU)")
        if gpu.retirement_pending:
            findings.append(f"{label}: page retirement pending (reset the GPU)")
        if policy.require_ecc and gpu.ecc_enabled is False:
            findings.append(f"{label}: ECC is disabled")
        if gpu.aggregate_uncorrectable:
            warnings.append(f"{label}: {gpu.aggregate_uncorrectable} uncorrectable ECC errors over its lifetime")
    if findings:
        return Check("ecc", Status.FAIL, tuple(findings + warnings))
    if warnings:
        return Check("ecc", Status.WARN, tuple(warnings))
    return Check("ecc", Status.OK)


def check_reset(report: SmiReport) -> Check:
    findings: list[str] = []
    for i, gpu in enumerate(report.gpus):
        if gpu.reset_required:
            findings.append(f"{_label(i, gpu)}: driver reports a reset is required")
        elif gpu.drain_and_reset_recommended:
            findings.append(f"{_label(i, gpu)}: driver recommends drain and reset")
        if gpu.recovery_action and gpu.recovery_action.lower() != "none":
            findings.append(f"{_label(i, gpu)}: recovery action {gpu.recovery_action}")
    return Check("reset", Status.FAIL, tuple(findings)) if findings else Check("reset", Status.OK)


def check_persistence(report: SmiReport, policy: Policy) -> Check:
    off = [_label(i, g) for i, g in enumerate(report.gpus) if g.persistence_mode is False]
    if not off:
        return Check("persistence", Status.OK)
    line = f"persistence mode off on {', '.join(off)} (is nvidia-persistenced running?)"
    return Check("persistence", Status.FAIL if policy.require_persistence else Status.WARN, (line,))


def check_fabric(expect: Expectation, report: SmiReport, service_state: str | None,
                 nvlsm_running: bool | None = None) -> Check:
    """NVSwitch systems: Fabric Manager must run (and on fourth-generation NVSwitch NVLSM, which Fabric Manager's
    wrapper starts) and every GPU must have finished fabric registration. None: that state was not read."""
    if not expect.nvswitch:
        return Check("fabric", Status.SKIP, detail="no NVSwitch in the profile")
    findings: list[str] = []
    if service_state is not None and service_state != "active":
        findings.append(f"nvidia-fabricmanager is {service_state}")
    if nvlsm_running is False:
        findings.append("NVLink Subnet Manager (nvlsm) is not running")
    for i, gpu in enumerate(report.gpus):
        if gpu.fabric_state is None:
            findings.append(f"{_label(i, gpu)}: driver reports no fabric state")
        elif gpu.fabric_state.lower() != "completed" or (gpu.fabric_status or "").lower() != "success":
            findings.append(f"{_label(i, gpu)}: fabric {gpu.fabric_state} ({gpu.fabric_status or 'no status'})")
    return Check("fabric", Status.FAIL, tuple(findings)) if findings else Check("fabric", Status.OK)


def check_nvlink(expect: Expectation, topology: Topology, policy: Policy) -> Check:
    need = max(policy.min_nvlinks, 1 if expect.nvswitch else 0)
    if need == 0:
        return Check("nvlink", Status.SKIP, detail="no NVLink requirement")
    weak = topology.weak_pairs(need)
    if not weak:
        least = min((topology.nvlinks(a, b) for a in topology.gpus for b in topology.gpus if a < b), default=0)
        return Check("nvlink", Status.OK, detail=f"every GPU pair on >= {least} NVLinks")
    # a GPU whose links all failed shows up in every pair: name it once
    others = list(topology.gpus)
    isolated = [g for g in others if len(others) > 2 and all(topology.nvlinks(g, o) == 0 for o in others if o != g)]
    findings = [f"{g} has no NVLink to the other GPUs" for g in isolated]
    rest = [(a, b, cell) for a, b, cell in weak if a not in isolated and b not in isolated]
    if len(rest) > 3:
        a, b, cell = rest[0]
        findings.append(f"{len(rest)} GPU pairs on fewer than {need} NVLinks (e.g. {a}-{b} on {cell})")
    else:
        findings += [f"{a}-{b} on {cell} (need NV{need})" for a, b, cell in rest]
    return Check("nvlink", Status.FAIL, tuple(findings))


def check_xids(events: Iterable[XidEvent], report: SmiReport | None, policy: Policy) -> Check:
    by_pci = {g.pci: i for i, g in enumerate(report.gpus)} if report else {}
    seen: dict[tuple[int, str], XidEvent] = {}
    ignored = 0
    for event in events:
        if event.is_critical(policy.xid_codes):
            seen.setdefault((event.code, event.pci), event)
        else:
            ignored += 1
    if not seen:
        return Check("xid", Status.OK, detail=f"no critical XIDs ({ignored} others)" if ignored else "no XIDs")
    findings = []
    for (code, pci), event in seen.items():
        index = by_pci.get(pci)
        where = f"GPU{index} ({pci})" if index is not None else pci
        findings.append(f"XID {code} on {where}: {event.meaning}")
    return Check("xid", Status.FAIL, tuple(findings))
