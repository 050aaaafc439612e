"""The agent's configuration file: generated from the site model (templates/cooling/agent.yaml.j2, shown by
`bitten render` for the agent's host) and validated here before the agent touches anything.

It is self-contained: the agent host needs neither the inventory nor Ansible, only this file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from bitten.site.model import (
    ALARM_KINDS,
    AlarmAction,
    AlarmKind,
    Cdu,
    Coolant,
    LedgerSources,
    LoopLimits,
    ModbusDevice,
    Name,
    RegisterMap,
    Reporting,
    Strict,
)
from bitten.site.problems import Problem

DEFAULT_PATH = "/etc/bitten/cooling/agent.yaml"


class AgentConfigError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class CduEntry(Cdu):
    #: the Redfish password (the generated file is 0640 root:bitten-cooling; the value comes from vault)
    password: str | None = None


class ModbusEntry(ModbusDevice):
    role: Literal["heat_meter", "meter"] = "meter"


class NodeEntry(Strict):
    name: str
    gpus: int = Field(default=0, ge=0)
    gpu_max_power_watts: int | None = Field(default=None, ge=1)


class LoopEntry(Strict):
    cdu: str
    heat_meter: str | None = None
    description: str = ""
    limits: LoopLimits = Field(default_factory=LoopLimits)
    actions: dict[AlarmKind, AlarmAction]
    nodes: tuple[NodeEntry, ...] = ()

    @model_validator(mode="after")
    def _complete(self) -> LoopEntry:
        missing = [k for k in ALARM_KINDS if k not in self.actions]
        if missing:
            raise ValueError(f"actions lacks {', '.join(missing)}")
        if self.actions["leak"].resume_on_clear:
            raise ValueError("actions.leak.resume_on_clear must be false: an operator resumes nodes after a leak")
        return self


class AgentConfig(Strict):
    site: str
    listen: str = "127.0.0.1"
    port: int = Field(default=9105, ge=0, le=65535)
    poll_interval_s: float = Field(default=10.0, ge=0.05)
    stale_after_s: float = Field(default=60.0, gt=0)
    clear_polls: int = Field(default=3, ge=1)
    divergence_warn: float = Field(default=0.1, gt=0)
    state_dir: str = "/var/lib/bitten-cooling"
    writes_enabled: bool = False
    slurm_actions: bool = True
    gpu_power_command: tuple[str, ...] = ()
    scontrol: tuple[str, ...] = ("scontrol",)
    coolants: dict[str, Coolant] = Field(default_factory=dict)
    cdus: dict[Name, CduEntry] = Field(default_factory=dict)
    modbus: dict[Name, ModbusEntry] = Field(default_factory=dict)
    register_maps: dict[Name, RegisterMap] = Field(default_factory=dict)
    loops: dict[Name, LoopEntry] = Field(default_factory=dict)
    ledger: LedgerSources = Field(default_factory=LedgerSources)
    reporting: Reporting = Field(default_factory=Reporting)

    @model_validator(mode="after")
    def _references(self) -> AgentConfig:
        problems = []
        for name, cdu in self.cdus.items():
            if cdu.coolant and cdu.coolant not in self.coolants:
                problems.append(f"cdus.{name}.coolant: {cdu.coolant!r} is not in coolants")
        for name, dev in self.modbus.items():
            if dev.register_map not in self.register_maps:
                problems.append(f"modbus.{name}.register_map: {dev.register_map!r} is not in register_maps")
        for name, loop in self.loops.items():
            if loop.cdu not in self.cdus:
                problems.append(f"loops.{name}.cdu: {loop.cdu!r} is not in cdus")
            if loop.heat_meter and loop.heat_meter not in self.modbus:
                problems.append(f"loops.{name}.heat_meter: {loop.heat_meter!r} is not in modbus")
        for channel, sources in self.ledger.channels().items():
            for i, src in enumerate(sources):
                if src.device is not None and src.device not in self.modbus:
                    problems.append(f"ledger.{channel}[{i}].device: {src.device!r} is not in modbus")
                elif src.device is not None:
                    rmap = self.register_maps.get(self.modbus[src.device].register_map)
                    if rmap is not None and src.register_name not in rmap.registers:
                        problems.append(f"ledger.{channel}[{i}].register: {src.register_name!r} is not in the "
                                        f"map of {src.device}")
                if src.cdu is not None and src.cdu not in self.cdus:
                    problems.append(f"ledger.{channel}[{i}].cdu: {src.cdu!r} is not in cdus")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def ledger_path(self) -> Path:
        return Path(self.state_dir) / "ledger.sqlite"

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir) / "state.sqlite"


def parse_config(raw: Any, source: str = "<config>") -> AgentConfig:
    try:
        return AgentConfig.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "(top level)"
            problems.append(Problem(file=source, field=field, message=err["msg"],
                                    fix="regenerate the file from the inventory (bitten render) or correct it"))
        raise AgentConfigError(problems) from None


def load_config(path: Path | str) -> AgentConfig:
    """Read and validate an agent configuration file; AgentConfigError names the file, the field and the fix."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AgentConfigError([Problem(file=str(path), message=f"cannot read: {exc.strerror}",
                                   fix="check the path and that the agent's user may read it (mode 0640)")]) from None
    except yaml.YAMLError as exc:
        raise AgentConfigError([Problem(file=str(path), message=f"not valid YAML: {exc}",
                                   fix="regenerate the file from the inventory")]) from None
    if not isinstance(raw, dict):
        raise AgentConfigError([Problem(file=str(path), message="expected a mapping at the top level",
                                   fix="regenerate the file from the inventory")])
    return parse_config(raw, str(path))
