"""The agent's configuration file: a serialised model. :func:`build` makes the AgentConfig of the agent's host
from the site model, :func:`render` dumps it (what `bitten render` shows and the cooling_agent role installs), and
:func:`load_config` parses it back with the same model before the agent touches anything.

It is self-contained: the agent host needs neither the inventory nor Ansible, only this file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import Field, ValidationError, model_validator

from bitten.cooling.reason import REASON
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
    Plausibility,
    RegisterMap,
    Reporting,
    Site,
    Strict,
    check_actions,
)
from bitten.site.problems import Problem

DEFAULT_PATH = "/etc/bitten/cooling/agent.yaml"
#: libyaml's emitter where PyYAML has it (the same bytes, ~3x faster: the file lists every node of the site)
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class AgentConfigError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class CduEntry(Cdu):
    #: the Redfish password (the generated file is 0640 root:bitten-cooling; the value comes from vault)
    password: str | None = None


class ModbusEntry(ModbusDevice):
    role: Literal["heat_meter", "meter"] = "meter"


class BmcEntry(Strict):
    """Where a node's BMC answers (for powering it off on a critical leak)."""

    url: str
    system_id: str = "1"
    flavour: Literal["hpe_ilo", "generic"] = "hpe_ilo"


class NodeEntry(Strict):
    name: str
    gpus: int = Field(default=0, ge=0)
    gpu_max_power_watts: int | None = Field(default=None, ge=1)
    bmc: BmcEntry | None = None


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
        check_actions({str(k): v for k, v in self.actions.items()})
        return self


class AgentConfig(Strict):
    site: str
    listen: str = "127.0.0.1"
    port: int = Field(default=9105, ge=0, le=65535)
    poll_interval_s: float = Field(default=10.0, ge=0.05)
    stale_after_s: float = Field(default=60.0, gt=0)
    sensor_lost_after_s: float = Field(default=60.0, gt=0)
    read_deadline_s: float = Field(default=5.0, gt=0)
    max_response_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    store_retry_s: float = Field(default=30.0, gt=0)
    clear_polls: int = Field(default=3, ge=1)
    divergence_warn: float = Field(default=0.1, gt=0)
    state_dir: str = "/var/lib/bitten-cooling"
    writes_enabled: bool = False
    slurm_actions: bool = True
    gpu_power_command: tuple[str, ...] = ()
    scontrol: tuple[str, ...] = ("scontrol",)
    helper: tuple[str, ...] = ()
    coolants: dict[str, Coolant] = Field(default_factory=dict)
    cdus: dict[Name, CduEntry] = Field(default_factory=dict)
    modbus: dict[Name, ModbusEntry] = Field(default_factory=dict)
    register_maps: dict[Name, RegisterMap] = Field(default_factory=dict)
    loops: dict[Name, LoopEntry] = Field(default_factory=dict)
    ledger: LedgerSources = Field(default_factory=LedgerSources)
    reporting: Reporting = Field(default_factory=Reporting)
    plausibility: Plausibility = Field(default_factory=Plausibility)
    #: BMC accounts for powering nodes off (an owner-only YAML file: username, password, hosts: {node: ...})
    bmc_credentials_file: str | None = None
    #: CA bundle of the BMCs' certificates (None: the system trust store)
    bmc_ca_file: str | None = None

    @model_validator(mode="after")
    def _references(self) -> AgentConfig:
        problems = []
        for name, cdu in self.cdus.items():
            if cdu.coolant and cdu.coolant not in self.coolants:
                problems.append(f"cdus.{name}.coolant: {cdu.coolant!r} is not in coolants")
            if clear_text_credentials(cdu):
                problems.append(f"cdus.{name}.url: http would send the CDU's credentials in clear text; use https")
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


def clear_text_credentials(cdu: Cdu) -> bool:
    """An account sent over plain http to anything but loopback (the same rule as for BMCs)."""
    parts = urlsplit(cdu.url)
    host = (parts.hostname or "").lower()
    loopback = host in ("localhost", "::1") or host.startswith("127.")
    return parts.scheme == "http" and cdu.auth != "none" and cdu.username is not None and not loopback


# --- from the site model ---------------------------------------------------------------------------------------

HEADER = """\
# Cooling agent of site {site} (bitten-cooling run --config /etc/bitten/cooling/agent.yaml).
# Managed by bitten from the {site} inventory: edit bitten_cooling there, not this file.
# Read-only towards the cooling equipment unless writes_enabled is true.
"""


def password_secret(cdu: str) -> str:
    """The vault secret that holds a CDU's Redfish password."""
    return f"cooling_cdu_{cdu}_password"


def build(site: Site, host: str, secret: Any = None) -> AgentConfig:
    """The AgentConfig of the agent on ``host``, from the site model; ``secret(name)`` gives CDU passwords (their
    placeholders for review)."""
    # imported here, not at the top: only this path needs it, and start-up stays light
    from bitten.core.templating import SECRET_PLACEHOLDER

    cooling = site.cooling
    agent = cooling.agent

    def password(name: str) -> str:
        key = password_secret(name)
        return str(secret(key)) if secret is not None else SECRET_PLACEHOLDER.format(name=key)

    cdus = {name: CduEntry(**cdu.model_dump(), password=password(name)
                           if cdu.username is not None and cdu.auth != "none" else None)
            for name, cdu in sorted(cooling.cdus.items())}
    modbus = {**{name: ModbusEntry(**d.model_dump(), role="heat_meter")
                 for name, d in sorted(cooling.heat_meters.items())},
              **{name: ModbusEntry(**d.model_dump(), role="meter") for name, d in sorted(cooling.meters.items())}}
    loops = {}
    for name, loop in sorted(cooling.loops.items()):
        actions = {kind: loop.action(kind) for kind in ALARM_KINDS}
        power_off = any(a.power_off for a in actions.values())
        nodes = []
        for node in site.loop_nodes(name):
            profile = site.profile_of(node)
            gpu = profile.gpu if profile else None
            bmc = site.nodes[node].bmc
            nodes.append(NodeEntry(name=node, gpus=gpu.count if gpu else 0,
                                   gpu_max_power_watts=gpu.max_power_watts if gpu else None,
                                   bmc=BmcEntry(url=bmc.url, system_id=bmc.system_id, flavour=bmc.flavour)
                                   if power_off and bmc is not None else None))
        loops[name] = LoopEntry(cdu=loop.cdu, heat_meter=loop.heat_meter, description=loop.description,
                                limits=loop.limits, actions=actions, nodes=tuple(nodes))
    settings = agent.model_dump(exclude={"hosts", "listen", "bmc_credentials_file", "bmc_ca_file"})
    return AgentConfig(
        site=site.info.name, listen=str(agent.listen or site.nodes[host].ip), **settings,
        coolants=dict(sorted(cooling.coolants.items())), cdus=cdus, modbus=modbus,
        register_maps=dict(sorted(cooling.register_maps.items())), loops=loops, ledger=cooling.ledger,
        reporting=cooling.reporting, plausibility=cooling.plausibility,
        bmc_credentials_file=agent.bmc_credentials_file if any(
            n.bmc for lp in loops.values() for n in lp.nodes) else None,
        bmc_ca_file=agent.bmc_ca_file)


def dump(config: AgentConfig) -> str:
    """The configuration as YAML, the way :func:`load_config` reads it back (every field, aliases as written)."""
    data = config.model_dump(mode="json", by_alias=True)
    return HEADER.format(site=config.site) + yaml.dump(data, Dumper=_DUMPER, sort_keys=False, allow_unicode=True,
                                                       width=120)


def render(site: Site, host: str | None, secret: Any) -> str:
    """The file /etc/bitten/cooling/agent.yaml of the agent's host (a FileSpec renderer)."""
    assert host is not None
    return dump(build(site, host, secret))


#: the lowest GPU power the agent may set, as a share of the maximum (the model's cap_gpu_power_percent floor)
MIN_CAP_SHARE = 0.10


def allowed(site: Site) -> dict[str, Any]:
    """What the agent's privileged helper lets it change (bitten.cooling.helper): the nodes of every loop, the
    reason prefix it owns, the GPU power range per node and the command that sets it."""
    nodes = sorted({n for loop in site.cooling.loops for n in site.loop_nodes(loop)})
    watts = {}
    for node in nodes:
        profile = site.profile_of(node)
        gpu = profile.gpu if profile else None
        if gpu is not None and gpu.max_power_watts:
            watts[node] = [max(1, int(gpu.max_power_watts * MIN_CAP_SHARE)), gpu.max_power_watts]
    return {"nodes": nodes, "reason_prefix": REASON.prefix, "scontrol": "/usr/bin/scontrol",
            "squeue": "/usr/bin/squeue", "scancel": "/usr/bin/scancel",
            "gpu_power_command": list(site.cooling.agent.gpu_power_command), "gpu_watts": watts}


def render_allowed(site: Site, host: str | None, secret: Any) -> str:
    """The file /etc/bitten/cooling/allowed.json (root's; the helper refuses it otherwise)."""

    return json.dumps(allowed(site), indent=2, sort_keys=True) + "\n"


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
