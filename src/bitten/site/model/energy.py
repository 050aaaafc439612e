"""The energy section (``bitten_energy``): the cluster as a part of the energy system (bitten.energy) -- grid and
heat-network signals, declarative policies the energy controller applies (shadow mode by default), node power from
the BMCs and rack PDUs, and how Slurm accounts energy per job."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from bitten.site.model.types import Name, Section, Strict, keys, names
from bitten.site.model.values import AbsolutePath, HttpUrl, ServiceUrl

#: signals a policy trigger can name: grid CO2 intensity (g/kWh, realised or forecast), the day-ahead price
#: (currency per MWh), the heat network's demand (kW) and the supply temperature it asks for (degC)
SignalName = Literal["co2", "co2_forecast", "price", "heat_demand", "requested_supply_temperature"]
GRID_SIGNALS = frozenset({"co2", "co2_forecast", "price"})
HEAT_SIGNALS = frozenset({"heat_demand", "requested_supply_temperature"})
#: the unit each signal is compared in (what a trigger's thresholds mean)
SIGNAL_UNITS: dict[str, str] = {"co2": "g/kWh", "co2_forecast": "g/kWh", "price": "currency/MWh",
                                "heat_demand": "kW", "requested_supply_temperature": "degC"}


class GridSignals(Strict):
    """Energinet's Energi Data Service (public, no key): DK1/DK2 CO2 intensity and day-ahead prices."""

    url: HttpUrl = "https://api.energidataservice.dk"
    price_area: Literal["DK1", "DK2"] = "DK1"
    #: 5-minute realised CO2 intensity (Minutes5UTC, PriceArea, CO2Emission g/kWh)
    co2_dataset: Name = "CO2Emis"
    #: 5-minute CO2 forecast (same fields)
    co2_forecast_dataset: Name = "CO2EmisProg"
    #: day-ahead prices: the quarter-hour successor of Elspotprices (TimeUTC, PriceArea, DayAheadPriceDKK/EUR)
    price_dataset: Name = "DayAheadPrices"
    currency: Literal["DKK", "EUR"] = "DKK"
    #: CA bundle on the controller host for the API's certificate (None: the system trust store)
    ca_file: AbsolutePath | None = None
    #: one HTTP request; all retries of one refresh end within deadline_s
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    deadline_s: float = Field(default=30.0, gt=0, le=600)
    #: how often the controller asks the service again (answers are cached in between)
    refresh_s: float = Field(default=300.0, ge=10, le=86400)
    #: a realised value older than this is stale (no decision rests on it); CO2Emis lags real time by minutes
    max_age_s: float = Field(default=1800.0, gt=0)

    @model_validator(mode="after")
    def _deadline(self) -> GridSignals:
        if self.deadline_s < self.timeout_s:
            raise ValueError(f"deadline_s {self.deadline_s:g} is shorter than one request (timeout_s "
                             f"{self.timeout_s:g})")
        return self


class HeatSignals(Strict):
    """The heat-reuse controller (Modbus, its register map in bitten_cooling.register_maps)."""

    #: a device under bitten_cooling.meters or heat_meters
    device: Name
    #: register with the network's heat demand (quantity heat_power)
    demand_register: Name | None = None
    #: register with the supply temperature the network asks for (quantity supply_temperature_setpoint)
    requested_supply_temperature_register: Name | None = None
    #: a reading older than this is stale
    max_age_s: float = Field(default=120.0, gt=0)

    @model_validator(mode="after")
    def _something(self) -> HeatSignals:
        if self.demand_register is None and self.requested_supply_temperature_register is None:
            raise ValueError("name demand_register or requested_supply_temperature_register (or both)")
        return self


class Signals(Strict):
    grid: GridSignals | None = None
    heat: HeatSignals | None = None


class Trigger(Strict):
    """One condition on a signal. It turns on past its threshold and off only ``hysteresis`` back from it."""

    signal: SignalName
    above: float | None = None
    below: float | None = None
    #: price only: on while the current quarter-hour is among the day's N most expensive hours (N*4 quarters)
    top_hours: int | None = Field(default=None, ge=1, le=23)
    #: in the signal's unit; off again only at above - hysteresis (or below + hysteresis)
    hysteresis: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _one_condition(self) -> Trigger:
        given = [k for k in ("above", "below", "top_hours") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of above, below or top_hours"
                             + (f" (got {', '.join(given)})" if given else ""))
        if self.top_hours is not None and self.signal != "price":
            raise ValueError("top_hours applies to the price signal only")
        return self


class GpuCapAction(Strict):
    """Cap every GPU of a partition's nodes (through the node-side tool the gpu role installs)."""

    type: Literal["gpu_cap"]
    partition: Name
    watts_per_gpu: int = Field(ge=1)


class HoldAction(Strict):
    """Hold the pending jobs of a flexible QoS (scontrol hold) and release them after; running jobs run on."""

    type: Literal["hold"]
    qos: Name


class CduSetpointAction(Strict):
    """Ask a CDU for a supply temperature (within the AllowableMin/Max the device reports at the time)."""

    type: Literal["cdu_setpoint"]
    cdu: Name
    side: Literal["primary", "secondary"] = "secondary"
    supply_temperature_c: float = Field(ge=5, le=90)


PolicyAction = Annotated[GpuCapAction | HoldAction | CduSetpointAction, Field(discriminator="type")]


class Policy(Strict):
    name: Name
    description: str = ""
    #: the policy is active when any (match: any) or all (match: all) triggers are on
    when: tuple[Trigger, ...]
    match: Literal["any", "all"] = "any"
    action: PolicyAction
    #: once active, stay active at least this long (no flapping actuators)
    min_hold_s: float = Field(default=900.0, ge=0)
    #: once released, stay released at least this long
    min_release_s: float = Field(default=900.0, ge=0)
    enabled: bool = True

    @field_validator("when")
    @classmethod
    def _some_trigger(cls, value: tuple[Trigger, ...]) -> tuple[Trigger, ...]:
        if not value:
            raise ValueError("a policy needs at least one trigger")
        return value


class EnergyController(Strict):
    """Where and how `bitten energy control` runs (role energy_controller)."""

    #: hosts that run the controller; empty: the first Slurm controller
    hosts: tuple[str, ...] = ()
    #: address /metrics listens on; None: the controller host's cluster address
    listen: ipaddress.IPv4Address | None = None
    port: int = Field(default=9106, ge=1, le=65535)
    #: where the users' own statements are served (MUNGE-authenticated; `bitten-energy-jobs` on the login nodes
    #: asks there); None: not served
    statements_port: int | None = Field(default=9107, ge=1, le=65535)
    interval_s: float = Field(default=60.0, ge=1, le=3600)
    state_dir: AbsolutePath = "/var/lib/bitten-energy"
    #: shadow: decide and log, act on nothing (the default until a site enables actions); act: apply decisions
    mode: Literal["shadow", "act"] = "shadow"
    #: how the controller runs scontrol (sudo limited to show/hold/release by the role)
    scontrol: tuple[str, ...] = ("sudo", "-n", "/usr/bin/scontrol")
    #: argv that sets (and reads back) one node's GPU power limit; {node} and {watts} are substituted; the tool
    #: (bitten-gpu-power, installed by the gpu role) prints what each GPU accepted as JSON
    gpu_power_command: tuple[str, ...] = ("ssh", "-o", "BatchMode=yes", "{node}", "sudo", "-n",
                                          "/usr/local/sbin/bitten-gpu-power", "--watts", "{watts}")
    #: the cooling agent's state file (read-only): its active alarms are interlocks
    cooling_state: AbsolutePath = "/var/lib/bitten-cooling/state.sqlite"
    #: an actuator call is retried with backoff until this deadline
    actuator_deadline_s: float = Field(default=60.0, gt=0, le=600)


#: Slurm's AcctGatherEnergyType plugins bitten can configure (acct_gather_energy/<name>)
EnergyPlugin = Literal["gpu", "ipmi", "rapl", "none"]


class EnergyAccounting(Strict):
    """Slurm's own per-job energy (sacct ConsumedEnergy) and bitten's attribution."""

    #: AcctGatherEnergyType per hardware profile: gpu (NVML), ipmi, rapl or none. slurm.conf carries one
    #: AcctGatherEnergyType, so the profiles that are not none must agree; ConsumedEnergy of nodes whose
    #: profile says none is not used
    plugins: dict[Name, EnergyPlugin] = Field(default_factory=dict)
    #: acct_gather.conf: seconds between samples (EnergyIPMIFrequency; JobAcctGatherFrequency energy=)
    frequency_s: int = Field(default=30, ge=1, le=3600)
    #: share of a node's heat its cold plates capture (the rest goes to air, not reused): ASSUMPTION per site
    liquid_capture_ratio: float = Field(default=0.85, gt=0, le=1)

    @property
    def slurm_plugin(self) -> str | None:
        """slurm.conf's AcctGatherEnergyType plugin (the profiles' one plugin that is not none), or None."""
        used = sorted({p for p in self.plugins.values() if p != "none"})
        return used[0] if len(used) == 1 else None


class NodePower(Strict):
    """Each compute node's power, energy and coolant heat from its BMC (Redfish Chassis EnvironmentMetrics,
    PowerSubsystem, ThermalSubsystem CoolantConnectors), polled by the energy controller into its ledger."""

    enabled: bool = True
    #: the node's chassis under /redfish/v1/Chassis/ (iLO: 1)
    chassis_id: str = "1"
    poll_interval_s: float = Field(default=30.0, ge=1, le=3600)
    #: a node without a good reading for this long is stale: no samples, an alarm
    stale_after_s: float = Field(default=120.0, gt=0)
    #: readings above this (W per node) are implausible; None: twice the profile's GPUs x max_power_watts + 5 kW
    max_node_w: float | None = Field(default=None, gt=0)


class GpuPower(Strict):
    """Each GPU node's GPU power and energy from DCGM: the /metrics of NVIDIA's dcgm-exporter, which the gpu role
    runs where NVIDIA's driver and DCGM are installed, polled by the energy controller into its ledger."""

    #: off by default: a node without DCGM (Debian's driver, no GPU) has no exporter to answer
    enabled: bool = False
    scheme: Literal["http", "https"] = "http"
    #: the gpu role's gpu_dcgm_exporter_listen
    port: int = Field(default=9400, ge=1, le=65535)
    path: str = Field(default="/metrics", pattern=r"^/[!-~]*$")
    poll_interval_s: float = Field(default=30.0, ge=1, le=3600)
    #: a node without a good reading for this long is stale: no samples, an alarm
    stale_after_s: float = Field(default=120.0, gt=0)
    #: a CA bundle for https exporters (None: the system store)
    ca_file: AbsolutePath | None = None


class RackPdu(Strict):
    """A rack PDU reached through Redfish PowerEquipment/RackPDUs: its metrics and the outlets feeding nodes."""

    url: ServiceUrl
    pdu_id: str = "1"
    #: read-only account; its password comes from vault as energy_pdu_<name>_password
    username: str | None = None
    ca_file: AbsolutePath | None = None
    #: outlet id -> the node it feeds
    outlets: dict[str, str] = Field(default_factory=dict)


class Energy(Strict):
    signals: Signals = Field(default_factory=Signals)
    #: QoS whose pending jobs may be held and released by policies (each must be in bitten_qos)
    flexible_qos: tuple[Name, ...] = ()
    #: per hardware profile, the lowest per-GPU cap any policy may set (at or above the GPU's min_power_watts)
    cap_floor_watts: dict[Name, int] = Field(default_factory=dict)
    policies: tuple[Policy, ...] = ()
    controller: EnergyController = Field(default_factory=EnergyController)
    accounting: EnergyAccounting = Field(default_factory=EnergyAccounting)
    node_power: NodePower = Field(default_factory=NodePower)
    gpu_power: GpuPower = Field(default_factory=GpuPower)
    pdus: dict[Name, RackPdu] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique(self) -> Energy:
        names = [p.name for p in self.policies]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"policy names must be unique: {', '.join(dupes)}")
        return self


def _policy_names(raw: object) -> set[str]:
    return names()(raw.get("policies") if isinstance(raw, dict) else None)


SECTIONS = (
    Section("bitten_energy", "energy", Energy,
            "grid and heat-network signals, energy policies, the energy controller, energy accounting", default={},
            declares={"energy_policies": _policy_names, "pdus": keys("pdus")}),
)
