"""The typed site model: what an inventory describes once it has been validated.

Each class mirrors one inventory variable (see inventory/README.md for the variable reference). Models forbid
unknown keys, so a misspelt setting is an error instead of being silently ignored.
"""

from __future__ import annotations

import ipaddress
import re
from functools import cached_property
from itertools import pairwise
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

DnsLabel = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", min_length=1, max_length=63)
]
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", min_length=1, max_length=64)]
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- hardware ---------------------------------------------------------------------------------------------


class Cpu(Strict):
    vendor: str = "AMD"
    model: str
    sockets: int = Field(ge=1, le=16)
    cores_per_socket: int = Field(ge=1, le=1024)
    threads_per_core: int = Field(default=1, ge=1, le=8)

    @property
    def cores(self) -> int:
        return self.sockets * self.cores_per_socket

    @property
    def threads(self) -> int:
        return self.cores * self.threads_per_core


GpuArchitecture = Literal["volta", "ampere", "hopper", "ada", "blackwell"]


class Gpu(Strict):
    vendor: Literal["nvidia"] = "nvidia"
    model: str
    #: the GRES type Slurm and UCloud use (``gpu:<slurm_type>:<count>``)
    slurm_type: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+$")]
    count: int = Field(ge=1, le=64)
    architecture: GpuArchitecture
    memory_gb: int = Field(ge=1)
    #: GPUs joined by an NVSwitch fabric need Fabric Manager (and NSCQ)
    nvswitch: bool = False
    #: device files of the GPUs, in Slurm's hostlist-like notation
    devices: str = "/dev/nvidia[0-7]"
    #: per-GPU power limit at full power, used when cooling alarms cap power
    max_power_watts: int | None = Field(default=None, ge=50)


class Boot(Strict):
    mode: Literal["UEFI", "Legacy"] = "UEFI"
    #: what a provisioning run boots once: Pxe or Cd (virtual media); None leaves boot alone
    target: Literal["Pxe", "Cd", "Hdd", "None"] = "Pxe"
    #: ISO URL inserted as virtual media when target is Cd
    image_url: str | None = None

    @model_validator(mode="after")
    def _image_with_cd(self) -> Boot:
        if self.target == "Cd" and not self.image_url:
            raise ValueError("boot target Cd needs image_url, the ISO the BMC inserts as virtual media")
        if self.image_url is not None:
            if self.target != "Cd":
                raise ValueError(f"image_url is used only with target Cd (target is {self.target})")
            if not re.match(r"^https?://[^\s/]+/\S*$", self.image_url):
                raise ValueError(f"image_url {self.image_url!r} is not an http(s) URL")
        return self


class HardwareProfile(Strict):
    vendor: str = "HPE"
    model: str
    cpu: Cpu
    #: memory Slurm may hand out (RealMemory), in MiB
    memory_mb: int = Field(ge=256)
    gpu: Gpu | None = None
    #: desired BIOS attributes, applied through the BMC's @Redfish.Settings object
    bios: dict[str, str | int | bool] = Field(default_factory=dict)
    boot: Boot = Field(default_factory=Boot)
    #: desired power state after provisioning
    power: Literal["On", "Off"] = "On"
    #: Slurm node features (constraints) besides the generated ones
    features: tuple[str, ...] = ()
    #: values in this profile that are not publicly known
    assumptions: tuple[str, ...] = ()


# --- provisioning -----------------------------------------------------------------------------------------
# The nodes' operating system over PXE (bitten.provision): the provisioner answers DHCP (one reservation per node
# from its boot MAC and address), TFTP and HTTP on the provisioning network and serves the images bitten builds.

SshPublicKey = Annotated[str, StringConstraints(
    pattern=r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|"
            r"sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\n]*)?$")]
DebPackage = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9+.-]+$")]
KernelModule = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+$")]
DevicePath = Annotated[str, StringConstraints(pattern=r"^/dev/[A-Za-z0-9/_.-]+$")]


class ProvisionNetwork(Strict):
    """The network nodes PXE-boot on; the provisioner answers DHCP, TFTP and HTTP there and nowhere else."""

    subnet: ipaddress.IPv4Network
    #: default route DHCP hands out and the nodes' network config sets; None: no default route
    gateway: ipaddress.IPv4Address | None = None
    dns_servers: tuple[ipaddress.IPv4Address, ...] = ()
    #: the provisioner's interface on this network (dnsmasq binds to it only)
    interface: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.@-]{1,15}$")] = "eth0"
    #: IPv6 prefix the provisioner announces router advertisements for: iPXE waits ~13 s for one before it
    #: loads its script when no router answers. None: no advertisements
    ipv6_ra_prefix: ipaddress.IPv6Network | None = None
    #: VLAN of the network (the nodes' boot ports are untagged members; documentation and switch config)
    vlan: int | None = Field(default=None, ge=1, le=4094)
    mtu: int = Field(default=1500, ge=576, le=9216)

    @model_validator(mode="after")
    def _gateway_inside(self) -> ProvisionNetwork:
        if self.gateway is not None and self.gateway not in self.subnet:
            raise ValueError(f"gateway {self.gateway} is outside the provisioning subnet {self.subnet}")
        return self


class ImageRecipe(Strict):
    """An OS image bitten builds (debootstrap); a hash of the recipe and of the builder names each build."""

    release: Literal["trixie", "bookworm"] = "trixie"
    #: packages on top of the base set (systemd, openssh-server, python3, the kernel, ...)
    packages: tuple[DebPackage, ...] = ()
    #: kernel modules the image keeps, with their dependencies; the others are left out to keep the image small.
    #: Empty keeps every module of the kernel package
    kernel_modules: tuple[KernelModule, ...] = ()
    description: str = ""


class ProvisionProfile(Strict):
    """How the nodes of one hardware profile get their operating system."""

    #: name of an image under bitten_provision.images
    image: Name
    #: stateless: the image is the root file system in RAM (default); disk: the image is written to ``disk``
    #: from the ramdisk, the BMC's boot target switches to Hdd and the node reboots into it
    deploy: Literal["stateless", "disk"] = "stateless"
    #: the disk a disk deploy writes (all of it), e.g. /dev/nvme0n1
    disk: DevicePath | None = None
    #: kernel console for boot messages (the BMC's serial console); None: none
    console: str | None = "ttyS0,115200"
    #: extra kernel command-line arguments
    kernel_args: tuple[Annotated[str, StringConstraints(pattern=r"^[^\s'\"]+$")], ...] = ()

    @model_validator(mode="after")
    def _disk_with_disk_deploy(self) -> ProvisionProfile:
        if self.deploy == "disk" and self.disk is None:
            raise ValueError("deploy disk needs disk, the device the image is written to (e.g. /dev/nvme0n1)")
        if self.deploy == "stateless" and self.disk is not None:
            raise ValueError("disk is used only with deploy disk")
        return self


class Provision(Strict):
    network: ProvisionNetwork
    images: dict[Name, ImageRecipe] = Field(min_length=1)
    #: per hardware profile: its image and deploy mode; nodes of profiles not listed are not provisioned by bitten
    profiles: dict[str, ProvisionProfile] = Field(min_length=1)
    #: public keys that may log in as root on a freshly provisioned node (Ansible connects with one of them)
    admin_keys: tuple[SshPublicKey, ...] = ()
    #: the provisioner's HTTP port (iPXE scripts, kernels, images, identity overlays, boot reports)
    http_port: int = Field(default=80, ge=1, le=65535)
    #: how long the boot stage waits for a powered-on node to report "up"
    boot_timeout_s: int = Field(default=900, ge=30)


# --- nodes ------------------------------------------------------------------------------------------------


class Bmc(Strict):
    """Where a node's BMC answers Redfish."""

    #: host[:port] of the BMC (iLO)
    address: str
    scheme: Literal["https", "http"] = "https"
    #: Redfish system id under /redfish/v1/Systems/
    system_id: str = "1"
    #: how the BMC speaks Redfish: the name of a module of bitten.core.redfish.flavours (hpe_ilo, generic, ...);
    #: the hardware capability checks it against the registry (site/ cannot import the core)
    flavour: str = Field("hpe_ilo", pattern=r"^[a-z][a-z0-9_]*$")

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.address}"

    @property
    def key(self) -> tuple[str, str]:
        return (self.address.lower(), self.system_id)


class Node(Strict):
    name: DnsLabel
    groups: tuple[str, ...]
    ip: ipaddress.IPv4Address
    hardware_profile: str | None = None
    bmc: Bmc | None = None
    boot_mac: str | None = None
    cooling_loop: str | None = None

    @field_validator("boot_mac")
    @classmethod
    def _mac(cls, value: str | None) -> str | None:
        if value is None:
            return None
        mac = value.lower().replace("-", ":")
        if not MAC_RE.match(mac):
            raise ValueError(f"{value!r} is not a MAC address (expected six hex pairs, e.g. 94:40:c9:00:00:01)")
        return mac


# --- Slurm ------------------------------------------------------------------------------------------------


class SlurmDatabase(Strict):
    """Where slurmdbd keeps accounting: a MariaDB database (its password comes from vault, never from here)."""

    #: database server; localhost means the MariaDB that the slurm_dbd host runs itself
    host: str = "localhost"
    port: int = Field(default=3306, ge=1, le=65535)
    #: database name (slurmdbd.conf StorageLoc)
    name: Name = "slurm_acct_db"
    #: database user (slurmdbd.conf StorageUser)
    user: Name = "slurm"


class SlurmSettings(Strict):
    cluster_name: DnsLabel
    #: process tracking and task plugins; containers (the lab) need linuxproc and none
    proctrack_type: str = "proctrack/cgroup"
    task_plugin: str = "task/cgroup,task/affinity"
    #: trust slurm.conf over what slurmd detects (containers report the host's hardware)
    config_overrides: bool = False
    #: accept GPUs without NVML autodetection
    gres_autodetect: Literal["off", "nvml"] = "nvml"
    #: program slurmd runs every health_check_interval seconds to drain sick nodes (HealthCheckProgram);
    #: the gpu role installs /usr/local/sbin/bitten-gpu-health on every compute node. None: no health check
    health_check_program: str | None = None
    health_check_interval: int = Field(default=300, ge=0)
    #: node states the health check runs in (HealthCheckNodeState), e.g. ANY or IDLE,CYCLE
    health_check_node_state: str = "ANY"
    #: program slurmd runs before a job's first step on each node (Prolog); a failure requeues the job
    prolog: str | None = None
    select_type_parameters: str = "CR_Core_Memory"
    return_to_service: int = Field(default=1, ge=0, le=2)
    max_job_count: int = Field(default=100000, ge=1)
    #: extra slurm.conf lines, key -> value, emitted verbatim at the end
    extra: dict[str, str] = Field(default_factory=dict)
    #: slurmdbd's database
    database: SlurmDatabase = Field(default_factory=SlurmDatabase)
    #: extra slurmdbd.conf lines (e.g. PurgeJobAfter), key -> value, emitted verbatim at the end
    dbd_extra: dict[str, str] = Field(default_factory=dict)


class Partition(Strict):
    name: Name
    #: inventory groups whose hosts form the partition
    groups: tuple[str, ...] = Field(min_length=1)
    #: a GPU partition must contain GPU nodes only
    gpu: bool = False
    default: bool = False
    max_time: str = "2-00:00:00"
    default_time: str = "01:00:00"
    #: AllowQoS: the QoS names jobs in this partition may use
    qos: tuple[str, ...] = Field(min_length=1)
    #: TRESBillingWeights, TRES -> weight (e.g. {"CPU": 1.0, "Mem": "0.25G", "GRES/gpu": 1.0})
    billing_weights: dict[str, float | str] = Field(default_factory=dict)
    max_nodes_per_job: int | None = Field(default=None, ge=1)
    state: Literal["UP", "DOWN", "DRAIN", "INACTIVE"] = "UP"


class Qos(Strict):
    name: Name
    description: str = ""
    priority: int = Field(default=0, ge=0)
    max_wall: str | None = None
    max_tres_per_user: str | None = None
    max_jobs_per_user: int | None = Field(default=None, ge=1)
    grp_tres: str | None = None
    flags: tuple[str, ...] = ()


class Account(Strict):
    name: Name
    description: str = ""
    organization: str = ""
    parent: str = "root"
    qos: tuple[str, ...] = ()
    default_qos: str | None = None
    users: tuple[str, ...] = ()


# --- cooling ----------------------------------------------------------------------------------------------

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
    url: Annotated[str, StringConstraints(pattern=r"^https?://[^/\s]+$")]
    #: id under /redfish/v1/ThermalEquipment/CDUs/
    cdu_id: str = "1"
    coolant: str | None = None
    model: str = ""
    #: Redfish account (read-only role suffices unless setpoint writes are enabled); the password comes from
    #: vault as secret cooling_cdu_<name>_password
    username: str | None = None
    auth: Literal["basic", "session", "none"] = "basic"
    #: CA bundle on the agent host that signs the CDU's certificate (None: the system trust store)
    ca_file: str | None = None
    #: follow the EventService's server-sent events (where offered) for immediate alarms, besides polling
    events: bool = True


class ModbusDevice(Strict):
    """A Modbus TCP device: heat meter, electricity or water meter, district-heating controller, heat-reuse PLC."""

    host: str
    port: int = Field(default=502, ge=1, le=65535)
    unit: int = Field(default=1, ge=0, le=247)
    #: name of a register map under bitten_cooling.register_maps
    register_map: str
    model: str = ""
    #: close the connection when idle this long (an ECL drops idle TCP connections after ~75 s)
    idle_timeout_s: float = Field(default=60.0, gt=0)


AlarmKind = Literal["leak", "pump_failed", "low_flow", "high_supply_temperature", "stale"]
ALARM_KINDS: tuple[str, ...] = ("leak", "pump_failed", "low_flow", "high_supply_temperature", "stale")


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


DEFAULT_ACTIONS: dict[str, AlarmAction] = {
    "leak": AlarmAction(drain=True),
    "pump_failed": AlarmAction(drain=True),
    "low_flow": AlarmAction(drain=True),
    "high_supply_temperature": AlarmAction(drain=True),
    "stale": AlarmAction(drain=False),
}


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
        leak = value.get("leak")
        if leak is not None and leak.resume_on_clear:
            raise ValueError("leak: resume_on_clear cannot be true: after a leak an operator resumes the nodes")
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


class Ledger(Strict):
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
    #: consecutive clean polls before an alarm clears
    clear_polls: int = Field(default=3, ge=1, le=100)
    #: computed and reported heat differing by more than this fraction is flagged in the metrics
    divergence_warn: float = Field(default=0.1, gt=0)
    state_dir: str = "/var/lib/bitten-cooling"
    #: allow setpoint writes to the cooling equipment (off: the agent is read-only towards the plant)
    writes_enabled: bool = False
    #: act on Slurm (drain/resume); off: alarms are only logged and exported
    slurm_actions: bool = True
    #: how the agent runs scontrol (it runs as its own user: sudo limited to show/drain/resume by the role)
    scontrol: tuple[str, ...] = ("sudo", "-n", "/usr/bin/scontrol")
    #: argv that caps one node's GPUs; {node} and {watts} are substituted
    gpu_power_command: tuple[str, ...] = ("ssh", "-o", "BatchMode=yes", "{node}", "nvidia-smi", "-pl", "{watts}")


class Cooling(Strict):
    coolants: dict[str, Coolant] = Field(default_factory=dict)
    cdus: dict[str, Cdu] = Field(default_factory=dict)
    heat_meters: dict[str, ModbusDevice] = Field(default_factory=dict)
    #: other Modbus devices: electricity meters (IT, facility), water meters, district-heating controllers
    meters: dict[str, ModbusDevice] = Field(default_factory=dict)
    register_maps: dict[Name, RegisterMap] = Field(default_factory=dict)
    loops: dict[str, CoolingLoop] = Field(default_factory=dict)
    ledger: Ledger = Field(default_factory=Ledger)
    reporting: Reporting = Field(default_factory=Reporting)
    agent: CoolingAgent = Field(default_factory=CoolingAgent)

    def modbus_devices(self) -> dict[str, ModbusDevice]:
        return {**self.heat_meters, **self.meters}


# --- UCloud -----------------------------------------------------------------------------------------------
# The UCloud Integration Module (IM) is configured from these; bitten.ucloud builds its /etc/ucloud files and
# checks them with the IM's own parser rules (bitten.ucloud.im.parser).

#: IM enums (im2/pkg/config): machine payment units, intervals, product name suffixes
MachinePaymentUnit = Literal["Cpu", "Gpu", "Memory"]
PaymentInterval = Literal["Minutely", "Hourly", "Daily"]
NameSuffix = Literal["Cpu", "Gpu", "Memory", "CpuV2", "GpuV2", "MemoryV2"]
StorageUnit = Literal["GB", "TB", "PB", "EB", "GiB", "TiB", "PiB", "EiB"]


class Payment(Strict):
    type: Literal["Resource", "Money"] = "Resource"
    #: what a Resource product is accounted in (Core, GPU or GB on Core); ignored for Money
    unit: MachinePaymentUnit = "Cpu"
    interval: PaymentInterval = "Minutely"
    #: required with type Money (e.g. DKK); products then need a price list
    currency: str | None = None


class MachineType(Strict):
    partition: Name
    qos: Name
    payment: Payment = Field(default_factory=Payment)
    #: vCPUs per product size; derived from the partition's hardware profile when gpu is given and cpu is not
    cpu: tuple[int, ...] | None = Field(default=None, min_length=1)
    #: GB of memory per product size; derived in proportion to cpu (or gpu) share of a node when omitted
    memory: tuple[int, ...] | None = Field(default=None, min_length=1)
    gpu: tuple[int, ...] | None = Field(default=None, min_length=1)
    #: price per product size and interval (payment type Money only)
    price: tuple[float, ...] | None = Field(default=None, min_length=1)
    #: which number names the products: <type>-<n> (Cpu, Gpu, Memory) or <type>-<n>-vcpu|gpu|gb (the V2 forms);
    #: default Gpu when gpu is given, else Cpu
    name_suffix: NameSuffix | None = None
    #: Slurm constraint (--constraint) for jobs of this machine type
    constraint: str | None = None
    #: shown on UCloud; default from the partition's hardware profile
    cpu_model: str | None = None
    gpu_model: str | None = None
    memory_model: str | None = None
    description: str = ""


class ScriptedIdentity(Strict):
    type: Literal["Scripted"] = "Scripted"
    on_user_connected: str = "/etc/ucloud/scripts/on-user-connected"
    on_project_updated: str = "/etc/ucloud/scripts/on-project-updated"


class FreeIpaIdentity(Strict):
    """FreeIPA identity management; its password is the secret ``ucloud_freeipa_password`` (secrets.yml)."""

    type: Literal["FreeIPA"]
    url: str
    username: str
    group_name: str = "ucloud_users"
    verify_tls: bool = True
    ca_cert_file: str | None = None
    project_strategy: Literal["Default", "Date", "UUID"] = "Default"


class ScriptedFsManagement(Strict):
    type: Literal["Scripted"] = "Scripted"
    on_quota_updated: str = "/etc/ucloud/scripts/on-quota-updated"
    on_usage_reporting: str = "/etc/ucloud/scripts/on-usage-reporting"


class StoragePayment(Strict):
    type: Literal["Resource", "Money"] = "Resource"
    unit: StorageUnit = "GB"
    interval: PaymentInterval | None = None
    currency: str | None = None
    price: float | None = None


class DriveLocator(Strict):
    entity: Literal["User", "Project", "MemberFiles"]
    #: e.g. /home/#{localUsername} or /work/#{localGroupName}
    pattern: str | None = None
    script: str | None = None
    title: str | None = None
    #: GB every user gets for free (User locators only, and required there)
    free_quota: int | None = Field(default=None, ge=0)


def _default_locators() -> dict[str, DriveLocator]:
    return {
        "home": DriveLocator(entity="User", pattern="/home/#{localUsername}", title="Home", free_quota=10),
        "projects": DriveLocator(entity="Project", pattern="/work/#{localGroupName}", title="Work"),
    }


class FileSystem(Strict):
    management: ScriptedFsManagement = Field(default_factory=ScriptedFsManagement)
    payment: StoragePayment = Field(default_factory=StoragePayment)
    drive_locators: dict[str, DriveLocator] = Field(default_factory=_default_locators)


def _default_file_systems() -> dict[str, FileSystem]:
    return {"storage": FileSystem()}


class AccountMapper(Strict):
    #: Slurm account names the IM creates for users and projects, per product category
    users: str = "#{localUsername}_#{productCategory}"
    projects: str = "#{localGroupName}_#{productCategory}"


class UCloudDatabase(Strict):
    """The IM's PostgreSQL database; the password is the secret ``ucloud_db_password``."""

    host: str = "127.0.0.1"
    port: int = Field(default=5432, ge=1, le=65535)
    name: Name = "ucloud"
    username: Name = "ucloud"
    ssl: bool = False


class UCloudSsh(Strict):
    enabled: bool = True
    install_keys: bool = True
    #: host users' SSH clients reach (default: public_host)
    host: str | None = None
    port: int = Field(default=22, ge=1, le=65535)


class UCloud(Strict):
    provider_id: Name
    #: UCloud/Core, e.g. https://cloud.sdu.dk
    core_url: str
    #: public name of the frontend that Core reaches (envoy behind TLS)
    public_host: str
    public_port: int = Field(default=443, ge=1, le=65535)
    machine_types: dict[str, MachineType] = Field(default_factory=dict)
    identity_management: Annotated[ScriptedIdentity | FreeIpaIdentity, Field(discriminator="type")] = Field(
        default_factory=ScriptedIdentity)
    file_systems: dict[str, FileSystem] = Field(default_factory=_default_file_systems)
    account_mapper: AccountMapper = Field(default_factory=AccountMapper)
    database: UCloudDatabase = Field(default_factory=UCloudDatabase)
    ssh: UCloudSsh | None = None
    #: where the IM runs envoy and its IPC socket (the RPM's layout)
    envoy_executable: str = "/opt/ucloud/envoy/envoy"
    envoy_directory: str = "/var/run/ucloud/envoy"
    ipc_directory: str = "/var/run/ucloud"
    log_directory: str = "/var/log/ucloud"
    log_retention_days: int = Field(default=180, ge=1)
    #: envoy's local port, behind the TLS terminator on public_port
    gateway_port: int = Field(default=8889, ge=1, le=65535)


# --- the site ---------------------------------------------------------------------------------------------


class Lab(Strict):
    """How `bitten lab` builds this inventory on one machine (only the lab inventory sets it)."""

    #: podman network the lab's containers join; its gateway (first address) runs the emulators
    network: DnsLabel = "bitten-lab"
    subnet: ipaddress.IPv4Network = ipaddress.IPv4Network("10.77.0.0/24")
    #: Debian release of the node containers
    release: Literal["trixie", "bookworm"] = "trixie"

    @property
    def gateway(self) -> str:
        return str(next(self.subnet.hosts()))


class SiteInfo(Strict):
    name: DnsLabel
    description: str = ""
    domain: str
    timezone: str = "UTC"
    location: str = ""


#: inventory groups with a fixed meaning
GROUP_CONTROLLER = "slurm_controller"
GROUP_DBD = "slurm_dbd"
GROUP_LOGIN = "login"
GROUP_UCLOUD = "ucloud_frontend"
GROUP_GPU = "gpu_nodes"
GROUP_CPU = "cpu_nodes"
GROUP_COMPUTE = "compute"
GROUP_PROVISIONERS = "provisioners"


class Site(Strict):
    info: SiteInfo
    nodes: dict[str, Node]
    groups: dict[str, tuple[str, ...]]
    hardware_profiles: dict[str, HardwareProfile]
    slurm: SlurmSettings
    partitions: tuple[Partition, ...]
    qos: tuple[Qos, ...] = ()
    accounts: tuple[Account, ...] = ()
    cooling: Cooling = Field(default_factory=Cooling)
    ucloud: UCloud | None = None
    provision: Provision | None = None
    lab: Lab | None = None
    assumptions: tuple[str, ...] = ()

    def hosts_in(self, *groups: str) -> list[str]:
        """Hosts of the named groups, sorted and without duplicates (unknown groups are empty)."""
        found: set[str] = set()
        for group in groups:
            found.update(self.groups.get(group, ()))
        return sorted(found)

    @cached_property
    def controllers(self) -> list[str]:
        return self.hosts_in(GROUP_CONTROLLER)

    @cached_property
    def dbd_hosts(self) -> list[str]:
        return self.hosts_in(GROUP_DBD)

    @cached_property
    def compute_nodes(self) -> list[str]:
        return self.hosts_in(GROUP_COMPUTE, GROUP_GPU, GROUP_CPU)

    @cached_property
    def slurm_hosts(self) -> list[str]:
        """Every host that runs a Slurm daemon or client and so gets slurm.conf."""
        return self.hosts_in(GROUP_CONTROLLER, GROUP_DBD, GROUP_LOGIN, GROUP_UCLOUD, GROUP_COMPUTE, GROUP_GPU,
                             GROUP_CPU)

    def profile_of(self, host: str) -> HardwareProfile | None:
        name = self.nodes[host].hardware_profile
        return self.hardware_profiles.get(name) if name else None

    def partition_nodes(self, partition: Partition) -> list[str]:
        return self.hosts_in(*partition.groups)

    def partition(self, name: str) -> Partition | None:
        return next((p for p in self.partitions if p.name == name), None)

    @cached_property
    def compute_by_profile(self) -> dict[str, list[str]]:
        """Compute nodes grouped by hardware profile, profiles in name order."""
        out: dict[str, list[str]] = {}
        for host in self.compute_nodes:
            profile = self.nodes[host].hardware_profile
            if profile:
                out.setdefault(profile, []).append(host)
        return dict(sorted(out.items()))

    @cached_property
    def gpu_types(self) -> list[str]:
        """GRES types of the GPUs in the compute nodes' profiles (``b200``), sorted, each once."""
        types = {p.gpu.slurm_type for name in self.compute_by_profile
                 if (p := self.hardware_profiles.get(name)) is not None and p.gpu is not None}
        return sorted(types)

    def loop_nodes(self, loop: str) -> list[str]:
        return sorted(n.name for n in self.nodes.values() if n.cooling_loop == loop)

    @cached_property
    def cooling_agent_hosts(self) -> list[str]:
        """Hosts that run the cooling agent: the configured ones, else the first Slurm controller."""
        if not (self.cooling.cdus or self.cooling.heat_meters or self.cooling.meters):
            return []
        if self.cooling.agent.hosts:
            return sorted(self.cooling.agent.hosts)
        return self.controllers[:1]

    def fqdn(self, host: str) -> str:
        return f"{host}.{self.info.domain}"
