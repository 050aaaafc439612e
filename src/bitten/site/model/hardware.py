"""The hardware section: hardware profiles (CPUs, memory, GPUs, BIOS, boot, power, firmware), how a node's BMC
answers Redfish (``bitten_hardware_profiles``; a node's ``bitten_bmc``), and how reboots roll (``bitten_rollout``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import hostlist
from pydantic import Field, StringConstraints, model_validator

from bitten.site.model.types import Section, Strict, keys
from bitten.site.model.values import HostPort, HttpUrl

#: a Slurm node feature (constraint)
Feature = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$", max_length=64)]


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
    #: device files of the GPUs, in Slurm's hostlist-like notation; default /dev/nvidia[0-<count-1>]
    devices: str = "/dev/nvidia[0-7]"
    #: per-GPU power limit at full power, used when cooling alarms cap power
    max_power_watts: int | None = Field(default=None, ge=50)
    #: the lowest power limit the GPU accepts (nvidia-smi -q: Min Power Limit); energy policies cap within
    #: [min_power_watts, max_power_watts]
    min_power_watts: int | None = Field(default=None, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _default_devices(cls, data: Any) -> Any:
        if isinstance(data, dict) and "devices" not in data and isinstance(data.get("count"), int) \
                and data["count"] >= 1:
            data = {**data, "devices": "/dev/nvidia0" if data["count"] == 1 else f"/dev/nvidia[0-{data['count'] - 1}]"}
        return data

    @model_validator(mode="after")
    def _one_device_per_gpu(self) -> Gpu:
        try:
            files = hostlist.expand_hostlist(self.devices)
        except hostlist.BadHostlist as exc:
            raise ValueError(f"devices {self.devices!r} is not a device list in Slurm's notation "
                             f"(e.g. /dev/nvidia[0-7]): {exc}") from None
        if not all(str(f).startswith("/dev/") for f in files):
            raise ValueError(f"devices {self.devices!r}: GRES device files live under /dev (e.g. /dev/nvidia[0-7])")
        if len(files) != self.count or len(set(files)) != len(files):
            raise ValueError(f"devices {self.devices} names {len(set(files))} device file(s) for {self.count} GPU(s): "
                             "gres.conf would give Slurm a different count than the node has; give one file per GPU")
        return self

    @model_validator(mode="after")
    def _power_range(self) -> Gpu:
        if self.min_power_watts is not None and self.max_power_watts is not None \
                and self.min_power_watts > self.max_power_watts:
            raise ValueError(f"min_power_watts {self.min_power_watts} is above max_power_watts {self.max_power_watts}")
        return self


class Boot(Strict):
    mode: Literal["UEFI", "Legacy"] = "UEFI"
    #: what a provisioning run boots once: Pxe or Cd (virtual media); None leaves boot alone
    target: Literal["Pxe", "Cd", "Hdd", "None"] = "Pxe"
    #: ISO URL inserted as virtual media when target is Cd
    image_url: HttpUrl | None = None

    @model_validator(mode="after")
    def _image_with_cd(self) -> Boot:
        if self.target == "Cd" and not self.image_url:
            raise ValueError("boot target Cd needs image_url, the ISO the BMC inserts as virtual media")
        if self.image_url is not None and self.target != "Cd":
            raise ValueError(f"image_url is used only with target Cd (target is {self.target})")
        return self


class Firmware(Strict):
    """A firmware version a hardware profile expects, and the image that installs it."""

    #: the component's Name in the BMC's FirmwareInventory (on iLO e.g. "System ROM", "iLO 5"; BIOS, BMC on the
    #: emulator)
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    #: the image: a path under bitten_rollout.firmware_repository (the site's own HTTP server), or a URL there
    image: str = Field(min_length=1)


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
    #: the firmware baseline: label (bmc, bios, gpu, nic, ...) -> the version the BMC must report, and its image
    firmware: dict[str, Firmware] = Field(default_factory=dict)
    #: Slurm node features (constraints) besides the generated ones
    features: tuple[Feature, ...] = ()
    #: values in this profile that are not publicly known
    assumptions: tuple[str, ...] = ()


class Bmc(Strict):
    """Where a node's BMC answers Redfish."""

    #: host[:port] of the BMC (iLO)
    address: HostPort
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


class RolloutSettings(Strict):
    """How changes that need a reboot (pending BIOS settings, staged firmware, a new image or driver) roll through
    Slurm (``bitten_rollout``): in waves, never through a running job, each node gated before it takes work."""

    #: nodes rebooted at the same time
    wave_size: int = Field(default=2, ge=1)
    #: slurm: ``scontrol reboot ASAP nextstate=RESUME`` (the node's RebootProgram); bmc: drain, wait for the jobs,
    #: restart through the BMC, resume
    method: Literal["slurm", "bmc"] = "slurm"
    #: what the gate's test job runs on each rebooted node (through srun); empty: the GPU health check
    #: (bitten_slurm.health_check_program --mode report) on nodes with GPUs, /bin/true elsewhere
    gate_command: tuple[str, ...] = ()
    #: how long a test job may take
    gate_timeout_s: float = Field(default=300, gt=0)
    #: how long a node may take from the reboot until Slurm sees it back (the time its jobs still run not counted)
    reboot_timeout_s: float = Field(default=1800, gt=0)
    #: how long to wait for running jobs to end before a node reboots; 0: as long as they run
    drain_timeout_s: float = Field(default=0, ge=0)
    #: stop after this many nodes failed (a bad BIOS setting or image is not rolled over the whole cluster)
    max_failures: int = Field(default=0, ge=0)
    #: the site's own HTTP server for firmware images (every profile's firmware image is under it)
    firmware_repository: HttpUrl | None = None
    #: how long a firmware update (the BMC's task) may take
    update_timeout_s: float = Field(default=1800, gt=0)
    #: how scontrol and srun are run (on a Slurm host; e.g. ["ssh", "slurm-ctl", "scontrol"] from elsewhere)
    scontrol: tuple[str, ...] = ("scontrol",)
    srun: tuple[str, ...] = ("srun",)
    #: how a node that comes back from its reboot without its configuration (a stateless node: it PXE-booted its
    #: image again, with its identity only) is converged before the gate, once it reported up: this command with
    #: ``--limit <node>[,<node>...]`` appended, run where ``bitten hardware rollout`` runs, e.g. ["ansible-playbook",
    #: "-i", "inventory/bitten", "playbooks/site.yml"]. Required when a rollout reboots a stateless node.
    converge: tuple[str, ...] = ()
    #: how long that command may take
    converge_timeout_s: float = Field(default=1800, gt=0)


SECTIONS = (
    Section("bitten_hardware_profiles", "hardware_profiles", HardwareProfile, "hardware profiles by name",
            shape="mapping", declares={"profiles": keys()}),
    Section("bitten_rollout", "rollout", RolloutSettings, "how reboots and firmware updates roll through Slurm: "
            "waves, gate, firmware repository"),
)
