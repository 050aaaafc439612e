"""The energy controller's configuration file: generated from the site model (the energy capability's
/etc/bitten/energy/controller.yaml, shown by `bitten render` for the controller's host) and validated here before
the controller touches anything. Self-contained: the controller host needs neither the inventory nor Ansible.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from bitten.site.model import (
    GridSignals,
    HeatSignals,
    ModbusDevice,
    Name,
    Policy,
    RegisterMap,
    Site,
    Strict,
)
from bitten.site.problems import Problem

#: libyaml's emitter where PyYAML has it (the same bytes, ~3x faster: the file lists every node's BMC)
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

DEFAULT_PATH = "/etc/bitten/energy/controller.yaml"


class ConfigError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class NodeEntry(Strict):
    name: str
    gpus: int = Field(ge=0)
    #: the GPU's power limit range and the site's floor (None: unknown, so no cap is ever set on the node)
    min_w: int | None = None
    max_w: int | None = None
    floor_w: int | None = None
    loop: str | None = None


class HeatEntry(Strict):
    signals: HeatSignals
    device: ModbusDevice
    register_map: RegisterMap


class CduEntry(Strict):
    url: str
    cdu_id: str = "1"
    username: str | None = None
    auth: Literal["basic", "session", "none"] = "basic"
    ca_file: str | None = None
    #: from the secrets (cooling_cdu_<name>_password); the file is 0640 root:bitten-energy
    password: str | None = None
    loops: tuple[str, ...] = ()


class BmcEntry(Strict):
    url: str
    flavour: Literal["hpe_ilo", "generic"] = "hpe_ilo"
    #: readings above this are implausible (W)
    max_w: float = Field(gt=0)


class GpuPowerEntry(Strict):
    """The GPU nodes whose dcgm-exporter the controller polls for GPU power and energy (into nodes.sqlite)."""

    poll_interval_s: float = Field(default=30.0, gt=0)
    stale_after_s: float = Field(default=120.0, gt=0)
    ca_file: str | None = None
    #: node -> its exporter's URL
    urls: dict[str, str] = Field(default_factory=dict)
    #: node -> the most one of its GPUs can draw (W; above it a reading is implausible)
    max_w: dict[str, float] = Field(default_factory=dict)


class NodePowerEntry(Strict):
    """The nodes whose BMCs the controller polls for power, energy and coolant heat (into nodes.sqlite)."""

    chassis_id: str = "1"
    poll_interval_s: float = Field(default=30.0, gt=0)
    stale_after_s: float = Field(default=120.0, gt=0)
    #: a CA bundle for the BMCs' certificates (None: the system store); credentials come from the environment
    #: (BITTEN_BMC_CREDENTIALS or BITTEN_BMC_USERNAME/PASSWORD, the unit's EnvironmentFile), never from this file
    ca_file: str | None = None
    nodes: dict[str, BmcEntry] = Field(default_factory=dict)


class JobNodeEntry(Strict):
    """What the statements attribute a job's share of a node by (bitten.energy.attribution.NodeInfo)."""

    gpus: int = Field(ge=0)
    threads: int = Field(ge=0)
    nominal_w: float = Field(gt=0)
    plugin: str | None = None


class StatementsEntry(Strict):
    """The users' own statements (bitten.energy.statements): each user's jobs, MUNGE-authenticated."""

    port: int = Field(default=9107, ge=0, le=65535)
    nodes: dict[str, JobNodeEntry] = Field(default_factory=dict)
    #: ledgers besides the controller's own node series (the cooling agent's, when it runs on this host)
    ledgers: tuple[str, ...] = ()
    #: UCloud machine types (accounts <group>_<type> are projects)
    categories: tuple[str, ...] = ()
    unmunge: tuple[str, ...] = ("unmunge",)
    sacct: tuple[str, ...] = ("sacct",)


class ControllerConfig(Strict):
    site: str
    mode: Literal["shadow", "act"] = "shadow"
    interval_s: float = Field(default=60.0, gt=0)
    listen: str = "127.0.0.1"
    port: int = Field(default=9106, ge=0, le=65535)
    state_dir: str = "/var/lib/bitten-energy"
    scontrol: tuple[str, ...] = ("scontrol",)
    squeue: tuple[str, ...] = ("squeue",)
    gpu_power_command: tuple[str, ...] = ()
    actuator_deadline_s: float = Field(default=60.0, gt=0)
    #: the cooling agent's /metrics (its alarms are interlocks); None: the site has no cooling agent
    cooling_metrics_url: str | None = None
    grid: GridSignals | None = None
    heat: HeatEntry | None = None
    policies: tuple[Policy, ...] = ()
    flexible_qos: tuple[Name, ...] = ()
    partitions: dict[Name, tuple[NodeEntry, ...]] = Field(default_factory=dict)
    cdus: dict[Name, CduEntry] = Field(default_factory=dict)
    node_power: NodePowerEntry | None = None
    gpu_power: GpuPowerEntry | None = None
    statements: StatementsEntry | None = None

    @model_validator(mode="after")
    def _references(self) -> ControllerConfig:
        problems = []
        for p in self.policies:
            action = p.action
            if action.type == "gpu_cap" and action.partition not in self.partitions:
                problems.append(f"policy {p.name}: partition {action.partition!r} is not in partitions")
            if action.type == "hold" and action.qos not in self.flexible_qos:
                problems.append(f"policy {p.name}: QoS {action.qos!r} is not in flexible_qos")
            if action.type == "cdu_setpoint" and action.cdu not in self.cdus:
                problems.append(f"policy {p.name}: CDU {action.cdu!r} is not in cdus")
            for t in p.when:
                if t.signal in ("co2", "co2_forecast", "price") and self.grid is None:
                    problems.append(f"policy {p.name}: {t.signal} needs grid")
                if t.signal in ("heat_demand", "requested_supply_temperature") and self.heat is None:
                    problems.append(f"policy {p.name}: {t.signal} needs heat")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir) / "state.json"

    @property
    def decisions_path(self) -> Path:
        return Path(self.state_dir) / "decisions.jsonl"

    @property
    def mode_path(self) -> Path:
        return Path(self.state_dir) / "mode"

    @property
    def nodes_ledger_path(self) -> Path:
        return Path(self.state_dir) / "nodes.sqlite"

    @property
    def cache_path(self) -> Path:
        return Path(self.state_dir) / "signals.json"


def from_site(site: Site, host: str | None = None, secret: Any = None) -> ControllerConfig:
    """The controller's configuration for its host, from the validated site."""
    energy = site.energy
    ctl = energy.controller
    host = host or (site.energy_controller_hosts[0] if site.energy_controller_hosts else None)
    listen = str(ctl.listen) if ctl.listen else (str(site.nodes[host].ip) if host in site.nodes else "127.0.0.1")
    partitions: dict[str, tuple[NodeEntry, ...]] = {}
    for part in site.partitions:
        entries = []
        for name in site.partition_nodes(part):
            profile = site.profile_of(name)
            gpu = profile.gpu if profile else None
            entries.append(NodeEntry(name=name, gpus=gpu.count if gpu else 0,
                                     min_w=gpu.min_power_watts if gpu else None,
                                     max_w=gpu.max_power_watts if gpu else None,
                                     floor_w=energy.cap_floor_watts.get(site.nodes[name].hardware_profile or ""),
                                     loop=site.nodes[name].cooling_loop))
        partitions[part.name] = tuple(entries)
    heat = None
    if energy.signals.heat is not None:
        device = site.cooling.modbus_devices()[energy.signals.heat.device]
        heat = HeatEntry(signals=energy.signals.heat, device=device,
                         register_map=site.cooling.register_maps[device.register_map])
    used_cdus = {p.action.cdu for p in energy.policies if p.action.type == "cdu_setpoint"}
    cdus = {}
    for name in sorted(used_cdus):
        cdu = site.cooling.cdus[name]
        password = secret(f"cooling_cdu_{name}_password") if secret and cdu.username and cdu.auth != "none" else None
        cdus[name] = CduEntry(url=cdu.url, cdu_id=cdu.cdu_id, username=cdu.username, auth=cdu.auth,
                              ca_file=cdu.ca_file, password=password,
                              loops=tuple(sorted(n for n, lp in site.cooling.loops.items() if lp.cdu == name)))
    node_power = None
    if energy.node_power.enabled:
        bmcs = {}
        for name in site.compute_nodes:
            node = site.nodes[name]
            if node.bmc is None:
                continue
            profile = site.profile_of(name)
            gpu_w = (profile.gpu.count * (profile.gpu.max_power_watts or 1000)) if profile and profile.gpu else 0
            bmcs[name] = BmcEntry(url=node.bmc.url, flavour=node.bmc.flavour,
                                  max_w=energy.node_power.max_node_w or float(2 * gpu_w + 5000))
        if bmcs:
            node_power = NodePowerEntry(chassis_id=energy.node_power.chassis_id,
                                        poll_interval_s=energy.node_power.poll_interval_s,
                                        stale_after_s=energy.node_power.stale_after_s, nodes=bmcs)
    gpu_power = None
    if energy.gpu_power.enabled:
        gp = energy.gpu_power
        urls, gpu_max = {}, {}
        for name in site.compute_nodes:
            profile = site.profile_of(name)
            if profile is None or profile.gpu is None:
                continue
            urls[name] = f"{gp.scheme}://{site.nodes[name].ip}:{gp.port}{gp.path}"
            # half again the GPU's board power: a reading above it is not a GPU's
            gpu_max[name] = 1.5 * float(profile.gpu.max_power_watts or 1000)
        if urls:
            gpu_power = GpuPowerEntry(poll_interval_s=gp.poll_interval_s, stale_after_s=gp.stale_after_s,
                                      ca_file=str(gp.ca_file) if gp.ca_file else None, urls=urls, max_w=gpu_max)
    agent = site.cooling.agent
    cooling_url = None
    if site.cooling_agent_hosts:
        agent_host = site.cooling_agent_hosts[0]
        address = str(agent.listen) if agent.listen else str(site.nodes[agent_host].ip)
        cooling_url = f"http://{address}:{agent.port}/metrics"
    statements = None
    if ctl.statements_port is not None:
        # imported here, not at the top: only this path needs it (the cluster model), and start-up stays light
        from bitten.energy.attribution import node_infos

        agent_here = host is not None and host in site.cooling_agent_hosts
        statements = StatementsEntry(
            port=ctl.statements_port,
            nodes={n: JobNodeEntry(gpus=i.gpus, threads=i.threads, nominal_w=i.nominal_w, plugin=i.plugin)
                   for n, i in node_infos(site).items()},
            ledgers=(f"{site.cooling.agent.state_dir}/ledger.sqlite",) if agent_here else (),
            categories=tuple(site.ucloud.machine_types) if site.ucloud else ())
    return ControllerConfig(
        site=site.info.name, mode=ctl.mode, interval_s=ctl.interval_s, listen=listen, port=ctl.port,
        state_dir=ctl.state_dir, scontrol=ctl.scontrol, gpu_power_command=ctl.gpu_power_command,
        actuator_deadline_s=ctl.actuator_deadline_s, cooling_metrics_url=cooling_url, grid=energy.signals.grid,
        heat=heat, policies=energy.policies, flexible_qos=energy.flexible_qos, partitions=partitions, cdus=cdus,
        node_power=node_power, gpu_power=gpu_power, statements=statements)


def render(site: Site, host: str | None, secret: Any) -> str:
    """The YAML the controller reads (a Python renderer for the file registry; secrets via ``secret``)."""
    cfg = from_site(site, host, secret)
    header = ("# The energy controller's configuration, generated by bitten from the inventory (bitten_energy):\n"
              "# edit the inventory, not this file.\n")
    return header + yaml.dump(cfg.model_dump(mode="json", exclude_none=True), Dumper=_DUMPER,
                              sort_keys=False, width=120)


def parse_config(raw: Any, source: str = "<config>") -> ControllerConfig:
    try:
        return ControllerConfig.model_validate(raw)
    except ValidationError as exc:
        problems = [Problem(file=source, field=".".join(str(p) for p in err["loc"]) or "(top level)",
                            message=err["msg"], fix="regenerate the file from the inventory (bitten render)")
                    for err in exc.errors()]
        raise ConfigError(problems) from None


def load_config(path: Path | str) -> ControllerConfig:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([Problem(file=str(path), message=f"cannot read: {exc.strerror}",
                                   fix="check the path and that the controller's user may read it")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(file=str(path), message=f"not valid YAML: {exc}",
                                   fix="regenerate the file from the inventory")]) from None
    if not isinstance(raw, dict):
        raise ConfigError([Problem(file=str(path), message="expected a mapping", fix="regenerate the file")])
    return parse_config(raw, str(path))
