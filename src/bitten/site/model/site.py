"""The Site: every section of the model together, with the derived views the capabilities share (hosts by role,
profiles of nodes, GPU types, the cooling agent's and the energy controller's hosts)."""

from __future__ import annotations

from functools import cached_property

from pydantic import Field

from bitten.site.model.base import (
    GROUP_COMPUTE,
    GROUP_CONTROLLER,
    GROUP_CPU,
    GROUP_DBD,
    GROUP_GPU,
    GROUP_LOGIN,
    GROUP_UCLOUD,
    Node,
    SiteInfo,
)
from bitten.site.model.cooling import Cooling
from bitten.site.model.energy import Energy
from bitten.site.model.fabric import Fabric
from bitten.site.model.hardware import HardwareProfile, RolloutSettings
from bitten.site.model.lab import LabSettings
from bitten.site.model.provision import Provision
from bitten.site.model.slurm import Account, Partition, Qos, SlurmSettings
from bitten.site.model.types import Strict
from bitten.site.model.ucloud import UCloud


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
    energy: Energy = Field(default_factory=Energy)
    ucloud: UCloud | None = None
    fabric: Fabric | None = None
    provision: Provision | None = None
    lab: LabSettings | None = None
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)
    assumptions: tuple[str, ...] = ()

    def hosts_in(self, *groups: str) -> list[str]:
        """Hosts of the named groups, sorted and without duplicates (unknown groups are empty)."""
        found: set[str] = set()
        for group in groups:
            found.update(self.groups.get(group, ()))
        return sorted(found)

    def members(self, names: tuple[str, ...] | list[str]) -> list[str]:
        """Hosts named directly or through their groups, sorted and without duplicates (unknown names are empty)."""
        found: set[str] = set()
        for name in names:
            if name in self.groups:
                found.update(self.groups[name])
            elif name in self.nodes:
                found.add(name)
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

    @cached_property
    def energy_controller_hosts(self) -> list[str]:
        """Hosts that run the energy controller: the configured ones, else the first Slurm controller."""
        energy = self.energy
        if not (energy.policies or energy.signals.grid or energy.signals.heat):
            return []
        if energy.controller.hosts:
            return sorted(energy.controller.hosts)
        return self.controllers[:1]

    def fqdn(self, host: str) -> str:
        return f"{host}.{self.info.domain}"
