"""The typed site model: what an inventory describes once it has been validated.

One module per section of the inventory, each the home of its capability's schema: ``base`` (the site, its nodes
and groups), ``hardware`` (hardware profiles, BMCs), ``slurm``, ``cooling``, ``ucloud``, ``fabric`` (InfiniBand),
``lab``; ``site`` puts them together as the Site; ``types`` holds the building blocks. Every public name is
importable from here. Models forbid unknown keys, so a misspelt setting is an error instead of being silently
ignored (see inventory/README.md for the variable reference).

A new capability's section: a module here with its models and its ``SECTIONS`` (the site-wide variables it reads
and the names they declare), its line in ``SECTIONS`` below, and its field on Site.
"""

from __future__ import annotations

from bitten.site.model import base as _base
from bitten.site.model import cooling as _cooling
from bitten.site.model import fabric as _fabric
from bitten.site.model import hardware as _hardware
from bitten.site.model import lab as _lab
from bitten.site.model import slurm as _slurm
from bitten.site.model import ucloud as _ucloud
from bitten.site.model.base import (
    GROUP_COMPUTE,
    GROUP_CONTROLLER,
    GROUP_CPU,
    GROUP_DBD,
    GROUP_GPU,
    GROUP_LOGIN,
    GROUP_UCLOUD,
    HOST_VARS,
    MAC_RE,
    Node,
    SiteInfo,
)
from bitten.site.model.cooling import (
    ALARM_KINDS,
    COUNTER_QUANTITIES,
    DEFAULT_ACTIONS,
    LEDGER_CHANNELS,
    QUANTITIES,
    REGISTER_WIDTH,
    UNITS,
    AlarmAction,
    AlarmKind,
    Cdu,
    Coolant,
    Cooling,
    CoolingAgent,
    CoolingLoop,
    LedgerSource,
    LedgerSources,
    LoopLimits,
    ModbusDevice,
    ModbusType,
    Register,
    RegisterMap,
    Reporting,
)
from bitten.site.model.fabric import (
    SWITCH_MODELS,
    Cable,
    Fabric,
    IbPartition,
    Ipoib,
    LinkSpeed,
    LinkWidth,
    NodePort,
    SlurmTopology,
    SubnetManager,
    Switch,
    SwitchLink,
    SwitchModel,
    Trunk,
)
from bitten.site.model.hardware import (
    Bmc,
    Boot,
    Cpu,
    Gpu,
    GpuArchitecture,
    HardwareProfile,
)
from bitten.site.model.lab import (
    LabSettings,
)
from bitten.site.model.site import (
    Site,
)
from bitten.site.model.slurm import (
    Account,
    Containers,
    Partition,
    Qos,
    SlurmDatabase,
    SlurmSettings,
)
from bitten.site.model.types import (
    Declares,
    DnsLabel,
    Name,
    Section,
    Strict,
)
from bitten.site.model.ucloud import (
    AccountMapper,
    DriveLocator,
    FileSystem,
    FreeIpaIdentity,
    MachinePaymentUnit,
    MachineType,
    NameSuffix,
    Payment,
    PaymentInterval,
    ScriptedFsManagement,
    ScriptedIdentity,
    StoragePayment,
    StorageUnit,
    UCloud,
    UCloudDatabase,
    UCloudSsh,
)

#: every site-wide variable, in the order the model reads them
SECTIONS: tuple[Section, ...] = (
    *_base.SECTIONS, *_hardware.SECTIONS, *_slurm.SECTIONS, *_cooling.SECTIONS, *_ucloud.SECTIONS, *_fabric.SECTIONS,
    *_lab.SECTIONS,
)

__all__ = [
    "ALARM_KINDS",
    "COUNTER_QUANTITIES",
    "DEFAULT_ACTIONS",
    "GROUP_COMPUTE",
    "GROUP_CONTROLLER",
    "GROUP_CPU",
    "GROUP_DBD",
    "GROUP_GPU",
    "GROUP_LOGIN",
    "GROUP_UCLOUD",
    "HOST_VARS",
    "LEDGER_CHANNELS",
    "MAC_RE",
    "QUANTITIES",
    "REGISTER_WIDTH",
    "SECTIONS",
    "SWITCH_MODELS",
    "UNITS",
    "Account",
    "AccountMapper",
    "AlarmAction",
    "AlarmKind",
    "Bmc",
    "Boot",
    "Cable",
    "Cdu",
    "Containers",
    "Coolant",
    "Cooling",
    "CoolingAgent",
    "CoolingLoop",
    "Cpu",
    "Declares",
    "DnsLabel",
    "DriveLocator",
    "Fabric",
    "FileSystem",
    "FreeIpaIdentity",
    "Gpu",
    "GpuArchitecture",
    "HardwareProfile",
    "IbPartition",
    "Ipoib",
    "LabSettings",
    "LedgerSource",
    "LedgerSources",
    "LinkSpeed",
    "LinkWidth",
    "LoopLimits",
    "MachinePaymentUnit",
    "MachineType",
    "ModbusDevice",
    "ModbusType",
    "Name",
    "NameSuffix",
    "Node",
    "NodePort",
    "Partition",
    "Payment",
    "PaymentInterval",
    "Qos",
    "Register",
    "RegisterMap",
    "Reporting",
    "ScriptedFsManagement",
    "ScriptedIdentity",
    "Section",
    "Site",
    "SiteInfo",
    "SlurmDatabase",
    "SlurmSettings",
    "SlurmTopology",
    "StoragePayment",
    "StorageUnit",
    "Strict",
    "SubnetManager",
    "Switch",
    "SwitchLink",
    "SwitchModel",
    "Trunk",
    "UCloud",
    "UCloudDatabase",
    "UCloudSsh",
]

