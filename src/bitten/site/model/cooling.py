"""The cooling section (``bitten_cooling``): coolants, CDUs, Modbus meters and their register maps, cooling loops
and what their alarms do, the energy ledger's sources, EU reporting facts, and the cooling agent."""

from __future__ import annotations

import ipaddress
import math
from itertools import pairwise
from typing import Literal

from pydantic import Field, field_validator, model_validator

from bitten.site.model.types import Name, Section, Strict, keys
from bitten.site.model.values import AbsolutePath, Host, ServiceUrl

#: engineering units a register or reading may carry: unit -> (dimension, factor to the canonical unit).
#: Canonical units: degC, K (temperature differences), L/min, kW, kWh, m3, percent, and "1" (dimensionless).
UNITS: dict[str, tuple[str, float]] = {
    "degC": ("temperature", 1.0),
    "K": ("temperature_difference", 1.0),
    "L/min": ("flow", 1.0), "L/s": ("flow", 60.0), "L/h": ("flow", 1 / 60), "m3/h": ("flow", 1000 / 60),
    "W": ("power", 0.001), "kW": ("power", 1.0), "MW": ("power", 1000.0),
    "Wh": ("energy", 0.001), "kWh": ("energy", 1.0), "MWh": ("energy", 1000.0), "MJ": ("energy", 1 / 3.6),
    "GJ": ("energy", 1000 / 3.6),
    "L": ("volume", 0.001), "m3": ("volume", 1.0),
    "kPa": ("pressure", 1.0), "bar": ("pressure", 100.0),
    "%": ("percent", 1.0),
    "1": ("dimensionless", 1.0),
}

#: what a register measures, and the dimension its unit must have
QUANTITIES: dict[str, str] = {
    "supply_temperature": "temperature",
    "return_temperature": "temperature",
    "delta_temperature": "temperature_difference",
    "flow": "flow",
    "heat_power": "power",
    "heat_energy": "energy",
    "electric_power": "power",
    "electric_energy": "energy",
    "water_volume": "volume",
    "supply_temperature_setpoint": "temperature",
    "pressure": "pressure",
    "valve_position": "percent",
    "status": "dimensionless",
}
#: quantities that are cumulative counters (the ledger takes differences, never integrates them)
COUNTER_QUANTITIES = frozenset({"heat_energy", "electric_energy", "water_volume"})

ModbusType = Literal["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"]
REGISTER_WIDTH: dict[str, int] = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "int64": 4, "uint64": 4,
                                  "float32": 2, "float64": 4}


class Register(Strict):
    """One value in a Modbus device: where it is, how to decode it, what it means."""

    #: zero-based register address (on Danfoss ECL controllers: PNU - 1)
    address: int = Field(ge=0, le=65535)
    #: 3 = holding registers (read with 03, written with 06), 4 = input registers (read-only, 04)
    function: Literal[3, 4] = 3
    type: ModbusType = "uint16"
    #: engineering value = raw * scale + offset
    scale: float = 1.0
    offset: float = 0.0
    unit: str = "1"
    #: what the value measures; defaults to the register's name when that is a known quantity
    quantity: str | None = None
    #: word order of multi-register values; defaults to the map's
    word_order: Literal["big", "little"] | None = None
    #: engineering values that mean "no reading" (an ECL reads 192 degC for an open sensor)
    invalid: tuple[float, ...] = ()
    #: the agent may write this register (function 06), only within [min, max], only when writes are enabled
    writable: bool = False
    min: float | None = None
    max: float | None = None
    description: str = ""

    @field_validator("unit")
    @classmethod
    def _unit(cls, value: str) -> str:
        if value not in UNITS:
            raise ValueError(f"unknown unit {value!r}; use one of {', '.join(UNITS)}")
        return value

    @field_validator("quantity")
    @classmethod
    def _quantity(cls, value: str | None) -> str | None:
        if value is not None and value not in QUANTITIES:
            raise ValueError(f"unknown quantity {value!r}; use one of {', '.join(QUANTITIES)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Register:
        if self.quantity is not None and UNITS[self.unit][0] != QUANTITIES[self.quantity]:
            raise ValueError(f"unit {self.unit} does not measure {self.quantity} "
                             f"(a {QUANTITIES[self.quantity].replace('_', ' ')})")
        if self.writable:
            if self.function != 3:
                raise ValueError("only holding registers (function 3) can be written")
            if REGISTER_WIDTH[self.type] != 1:
                raise ValueError("writes use function 06 (one register): a writable register must be int16/uint16")
            if self.min is None or self.max is None or self.min > self.max:
                raise ValueError("a writable register needs min <= max (the device's allowable range)")
        if self.scale == 0:
            raise ValueError("scale must not be 0")
        return self

    @property
    def count(self) -> int:
        return REGISTER_WIDTH[self.type]


class RegisterMap(Strict):
    """How to read a Modbus device: configuration, never code (every integrator's PLC has its own map)."""

    description: str = ""
    word_order: Literal["big", "little"] = "big"
    #: registers per read request (the protocol allows 125; Danfoss ECL answers at most 123)
    max_block: int = Field(default=123, ge=1, le=125)
    #: unmapped registers a block read may span to join two mapped ones (0: contiguous only)
    block_gap: int = Field(default=0, ge=0, le=100)
    registers: dict[Name, Register] = Field(min_length=1)

    @model_validator(mode="after")
    def _no_overlap(self) -> RegisterMap:
        spans = sorted((r.function, r.address, r.address + r.count - 1, name) for name, r in self.registers.items())
        for (f1, _a1, e1, n1), (f2, a2, _e2, n2) in pairwise(spans):
            if f1 == f2 and a2 <= e1:
                raise ValueError(f"registers {n1} and {n2} overlap (function {f1}, address {a2})")
        return self

    def quantity_of(self, name: str) -> str | None:
        reg = self.registers[name]
        if reg.quantity is not None:
            return reg.quantity
        return name if name in QUANTITIES else None


class Coolant(Strict):
    type: Literal["Water", "PropyleneGlycol", "EthyleneGlycol"] = "Water"
    #: additive mass fraction in percent (CoolProp's MPG/MEG mixtures are mass-based)
    additive_percent: float = Field(default=0.0, ge=0, le=60)
    #: fixed properties; when absent the agent takes them from the CDU's Coolant object, else from its table
    density_kg_m3: float | None = Field(default=None, gt=0)
    specific_heat_kj_kg_k: float | None = Field(default=None, gt=0)


class Cdu(Strict):
    """A coolant distribution unit reached through Redfish ThermalEquipment."""

    #: base URL of the CDU's Redfish service (scheme://host[:port])
    url: ServiceUrl
    #: id under /redfish/v1/ThermalEquipment/<equipment>/
    cdu_id: str = "1"
    #: the DMTF collection the unit is in: CDUs, HeatExchangers (a rear-door heat exchanger), ImmersionUnits --
    #: the same CoolingUnit schema, read and alarmed alike
    equipment: Literal["CDUs", "HeatExchangers", "ImmersionUnits"] = "CDUs"
    coolant: str | None = None
    model: str = ""
    #: Redfish account (read-only role suffices unless setpoint writes are enabled); the password comes from
    #: vault as secret cooling_cdu_<name>_password
    username: str | None = None
    auth: Literal["basic", "session", "none"] = "basic"
    #: CA bundle on the agent host that signs the CDU's certificate (None: the system trust store)
    ca_file: AbsolutePath | None = None
    #: follow the EventService's server-sent events (where offered) for immediate alarms, besides polling
    events: bool = True


class ModbusDevice(Strict):
    """A Modbus TCP device: heat meter, electricity or water meter, district-heating controller, heat-reuse PLC."""

    host: Host
    port: int = Field(default=502, ge=1, le=65535)
    unit: int = Field(default=1, ge=0, le=247)
    #: name of a register map under bitten_cooling.register_maps
    register_map: str
    model: str = ""
    #: close the connection when idle this long (an ECL drops idle TCP connections after ~75 s)
    idle_timeout_s: float = Field(default=60.0, gt=0)
    #: the most the meter can measure, in kW: an energy counter that steps by more than this times the interval
    #: is a glitch (a gap in the ledger, never energy); default: bitten_cooling.plausibility.power_kw.max
    max_power_kw: float | None = Field(default=None, gt=0)


class Bounds(Strict):
    """A closed range [min, max] of plausible values."""

    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> Bounds:
        if not (math.isfinite(self.min) and math.isfinite(self.max)) or self.min > self.max:
            raise ValueError(f"need finite min <= max, got [{self.min}, {self.max}]")
        return self

    def __contains__(self, value: float) -> bool:
        return self.min <= value <= self.max


class Plausibility(Strict):
    """What a reading may be before the agent believes it. A value outside its range (a temperature in kelvin, a
    negative flow, a density of 1e300) is implausible: the agent treats it as unknown, never as a measurement.
    The defaults are physical limits of a water or glycol loop; narrow them for a site."""

    #: coolant and district-heating water temperatures, degC (water boils at 100 degC; kelvin values are above it)
    temperature_c: Bounds = Bounds(min=-20, max=100)
    #: return minus supply, K
    temperature_difference_k: Bounds = Bounds(min=-50, max=50)
    flow_lpm: Bounds = Bounds(min=0, max=50000)
    #: heat and electric power, kW (also the default maximum power of a meter's energy counter)
    power_kw: Bounds = Bounds(min=0, max=100000)
    pressure_kpa: Bounds = Bounds(min=-100, max=2500)
    #: valve positions, pump speeds, additive fractions
    percent: Bounds = Bounds(min=0, max=100)
    density_kg_m3: Bounds = Bounds(min=800, max=1300)
    specific_heat_kj_kg_k: Bounds = Bounds(min=1.5, max=4.5)

    def for_dimension(self, dimension: str) -> Bounds | None:
        """The range of a register's dimension (bitten.site.model.UNITS), in its canonical unit."""
        found: Bounds | None = {
            "temperature": self.temperature_c, "temperature_difference": self.temperature_difference_k,
            "flow": self.flow_lpm, "power": self.power_kw, "pressure": self.pressure_kpa, "percent": self.percent,
            # counters: never negative (their steps are checked against the meter's maximum power)
            "energy": Bounds(min=0, max=1e15), "volume": Bounds(min=0, max=1e15),
        }.get(dimension)
        return found


AlarmKind = Literal["leak", "pump_failed", "low_flow", "high_supply_temperature", "stale", "sensor_lost"]
ALARM_KINDS: tuple[str, ...] = ("leak", "pump_failed", "low_flow", "high_supply_temperature", "stale",
                                "sensor_lost")
#: the kinds evaluated from a CDU's readings (stale and sensor_lost are the agent's own observations)
READING_KINDS: tuple[str, ...] = ("leak", "pump_failed", "low_flow", "high_supply_temperature")


class LoopLimits(Strict):
    #: rack-side (secondary) flow below this raises low_flow
    min_flow_lpm: float | None = Field(default=None, ge=0)
    #: rack-side (secondary) supply temperature above this raises high_supply_temperature
    max_supply_temperature_c: float | None = None
    #: failed pumps the CDU tolerates (N+1 redundancy: 1) before pump_failed is raised
    tolerated_pump_failures: int = Field(default=0, ge=0)


class AlarmAction(Strict):
    """What an alarm on a loop does to the Slurm nodes the loop cools."""

    drain: bool = True
    #: cap each GPU of the drained nodes to this percentage of its maximum power (None: no cap)
    cap_gpu_power_percent: int | None = Field(default=None, ge=10, le=100)
    #: resume the nodes when the alarm clears (never for a leak: a person inspects first)
    resume_on_clear: bool = False
    #: what happens to the jobs running on the loop's nodes: keep (drain lets them finish), requeue, or cancel
    jobs: Literal["keep", "requeue", "cancel"] = "keep"
    #: leak only: power the loop's nodes off through their BMCs when a detector reports a Critical leak
    power_off: bool = False


DEFAULT_ACTIONS: dict[str, AlarmAction] = {
    "leak": AlarmAction(drain=True),
    "pump_failed": AlarmAction(drain=True),
    "low_flow": AlarmAction(drain=True),
    "high_supply_temperature": AlarmAction(drain=True),
    "stale": AlarmAction(drain=False),
    "sensor_lost": AlarmAction(drain=False),
}


def check_actions(actions: dict[str, AlarmAction]) -> None:
    """Rules every loop's actions follow (the site model's and the agent configuration's)."""
    leak = actions.get("leak")
    if leak is not None and leak.resume_on_clear:
        raise ValueError("leak: resume_on_clear cannot be true: after a leak an operator resumes the nodes")
    for kind, action in actions.items():
        if action.power_off and kind != "leak":
            raise ValueError(f"{kind}: power_off is for a critical leak only")
        if action.jobs != "keep" and not action.drain:
            raise ValueError(f"{kind}: jobs: {action.jobs} needs drain: true (or new jobs would start on the nodes)")
        if action.power_off and not action.drain:
            raise ValueError(f"{kind}: power_off needs drain: true (Slurm would schedule jobs onto nodes it powers "
                             "off)")


class CoolingLoop(Strict):
    cdu: str
    #: the meter that measures heat handed to district heating from this loop
    heat_meter: str | None = None
    description: str = ""
    limits: LoopLimits = Field(default_factory=LoopLimits)
    #: per alarm kind, overrides of DEFAULT_ACTIONS
    actions: dict[AlarmKind, AlarmAction] = Field(default_factory=dict)

    @field_validator("actions")
    @classmethod
    def _leak_never_resumes(cls, value: dict[str, AlarmAction]) -> dict[str, AlarmAction]:
        check_actions(value)
        return value

    def action(self, kind: str) -> AlarmAction:
        found: AlarmAction | None = self.actions.get(kind)  # type: ignore[call-overload]
        return found if found is not None else DEFAULT_ACTIONS[kind]


class LedgerSource(Strict):
    """Where a ledger channel's readings come from: a register of a Modbus device, or a CDU's heat."""

    device: str | None = None
    #: the register of the device's map (written `register:` in the inventory)
    register_name: str | None = Field(default=None, alias="register")
    cdu: str | None = None
    #: for a CDU: which side's heat, and whether computed (rho*cp*flow*dT) or as the CDU reports it
    side: Literal["primary", "secondary"] = "primary"
    method: Literal["computed", "reported"] = "reported"

    @model_validator(mode="after")
    def _one_kind(self) -> LedgerSource:
        if (self.device is None) == (self.cdu is None):
            raise ValueError("give either device + register (a Modbus meter) or cdu (its heat)")
        if self.device is not None and self.register_name is None:
            raise ValueError("a Modbus source needs the register to read")
        return self

    @property
    def label(self) -> str:
        if self.device is not None:
            return f"{self.device}/{self.register_name}"
        return f"{self.cdu}/{self.side}/{self.method}"


#: ledger channels: energy-like quantities summed over a period, and the quantity each source must measure
LEDGER_CHANNELS: dict[str, tuple[str, ...]] = {
    "it_energy": ("electric_energy", "electric_power"),
    "facility_energy": ("electric_energy", "electric_power"),
    "reused_heat": ("heat_energy", "heat_power"),
    "renewable_energy": ("electric_energy", "electric_power"),
    "water_input": ("water_volume",),
    "potable_water_input": ("water_volume",),
    "waste_heat_temperature": ("supply_temperature",),
}


class LedgerSources(Strict):
    """Which meters feed the energy ledger (E_IT, E_DC, E_REUSE, E_RES, W_IN) behind the reports."""

    it_energy: tuple[LedgerSource, ...] = ()
    facility_energy: tuple[LedgerSource, ...] = ()
    reused_heat: tuple[LedgerSource, ...] = ()
    renewable_energy: tuple[LedgerSource, ...] = ()
    water_input: tuple[LedgerSource, ...] = ()
    potable_water_input: tuple[LedgerSource, ...] = ()
    #: temperature at which waste heat leaves for reuse (time-weighted mean while heat is delivered)
    waste_heat_temperature: tuple[LedgerSource, ...] = ()
    #: a longer silence between two readings of a source is recorded as a gap, never filled in
    max_gap_s: float = Field(default=300.0, gt=0)

    def channels(self) -> dict[str, tuple[LedgerSource, ...]]:
        return {name: getattr(self, name) for name in LEDGER_CHANNELS}


class Reporting(Strict):
    """Facts for the EU data-centre report that no meter measures."""

    #: P_DIT: installed IT power demand in kW (the EU reporting threshold is 500 kW)
    installed_it_power_kw: float | None = Field(default=None, gt=0)
    operator: str = ""
    owner: str = ""
    total_floor_area_m2: float | None = Field(default=None, gt=0)
    computer_room_floor_area_m2: float | None = Field(default=None, gt=0)
    #: temperature set point of the IT equipment's intake (air) or coolant supply, in degC
    it_temperature_setpoint_c: float | None = None
    #: every value above that is an estimate, not a measurement
    estimates: tuple[str, ...] = ()


class CoolingAgent(Strict):
    """Where and how the cooling agent runs."""

    #: hosts that run the agent; empty: the first Slurm controller
    hosts: tuple[str, ...] = ()
    #: address /metrics listens on; None: the agent host's cluster address
    listen: ipaddress.IPv4Address | None = None
    port: int = Field(default=9105, ge=1, le=65535)
    poll_interval_s: float = Field(default=10.0, ge=0.2, le=3600)
    #: a device without a good reading for this long is stale (alarm "stale")
    stale_after_s: float = Field(default=60.0, gt=0)
    #: an alarm whose inputs are unknown (missing, null, not a number, implausible) for this long raises
    #: "sensor_lost"; until then, and after, the alarm keeps its previous state (unknown never clears an alarm)
    sensor_lost_after_s: float = Field(default=60.0, gt=0)
    #: wall-clock limit of one device read (connect, every request, the whole body): a slow device delays
    #: nothing but itself
    read_deadline_s: float = Field(default=5.0, gt=0, le=600)
    #: the largest answer the agent reads from a device (bytes); a larger one fails that read
    max_response_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    #: how often the agent tries again to open its ledger or state database after it failed (corrupt, locked,
    #: full); alarms and drains never wait for it
    store_retry_s: float = Field(default=30.0, gt=0)
    #: consecutive clean polls before an alarm clears
    clear_polls: int = Field(default=3, ge=1, le=100)
    #: computed and reported heat differing by more than this fraction is flagged in the metrics
    divergence_warn: float = Field(default=0.1, gt=0)
    state_dir: AbsolutePath = "/var/lib/bitten-cooling"
    #: allow setpoint writes to the cooling equipment (off: the agent is read-only towards the plant)
    writes_enabled: bool = False
    #: act on Slurm (drain/resume); off: alarms are only logged and exported
    slurm_actions: bool = True
    #: how the agent reads node states (scontrol show node, as its own user: reading needs no privilege)
    scontrol: tuple[str, ...] = ("/usr/bin/scontrol",)
    #: how the agent asks for what it may change: drain, resume, requeue/cancel and cap exactly the nodes of its
    #: loops (bitten.cooling.helper run by sudo with this fixed argument list; its policy is
    #: /etc/bitten/cooling/allowed.json). Empty: scontrol directly (a lab or test without sudo)
    helper: tuple[str, ...] = ("sudo", "-n", "/opt/bitten-cooling/bin/python", "-I", "-m", "bitten.cooling.helper")
    #: argv that caps one node's GPUs; {node} and {watts} are substituted
    gpu_power_command: tuple[str, ...] = ("ssh", "-o", "BatchMode=yes", "{node}", "nvidia-smi", "-pl", "{watts}")
    #: BMC accounts on the agent host, for powering nodes off on a critical leak (actions.leak.power_off): an
    #: owner-only YAML file (username, password, hosts: {node: {username, password}}), never in the repository
    bmc_credentials_file: AbsolutePath = "/etc/bitten/cooling/bmc-credentials.yaml"
    #: CA bundle of the BMCs' certificates on the agent host (None: the system trust store)
    bmc_ca_file: AbsolutePath | None = None


class Cooling(Strict):
    coolants: dict[str, Coolant] = Field(default_factory=dict)
    cdus: dict[str, Cdu] = Field(default_factory=dict)
    heat_meters: dict[str, ModbusDevice] = Field(default_factory=dict)
    #: other Modbus devices: electricity meters (IT, facility), water meters, district-heating controllers
    meters: dict[str, ModbusDevice] = Field(default_factory=dict)
    register_maps: dict[Name, RegisterMap] = Field(default_factory=dict)
    loops: dict[str, CoolingLoop] = Field(default_factory=dict)
    ledger: LedgerSources = Field(default_factory=LedgerSources)
    reporting: Reporting = Field(default_factory=Reporting)
    agent: CoolingAgent = Field(default_factory=CoolingAgent)
    plausibility: Plausibility = Field(default_factory=Plausibility)

    def modbus_devices(self) -> dict[str, ModbusDevice]:
        return {**self.heat_meters, **self.meters}


SECTIONS = (
    Section("bitten_cooling", "cooling", Cooling,
            "coolants, CDUs, meters, register maps, cooling loops, the energy ledger and the agent", default={},
            declares={kind: keys(kind) for kind in ("coolants", "cdus", "heat_meters", "meters", "register_maps",
                                                    "loops")}),
)
