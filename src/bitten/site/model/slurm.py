"""The Slurm section: cluster-wide settings, partitions, QoS and accounts (``bitten_slurm``, ``bitten_partitions``,
``bitten_qos``, ``bitten_accounts``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from bitten.site.model.types import DnsLabel, Name, Section, Strict, items, names
from bitten.site.model.values import (
    AbsolutePath,
    BillingWeights,
    ConfLines,
    HealthCheckNodeState,
    Host,
    MemorySize,
    ProctrackType,
    QosFlag,
    SelectTypeParameters,
    SlurmTime,
    TaskPlugin,
    TresString,
    UserName,
    slurm_seconds,
)


class SlurmDatabase(Strict):
    """Where slurmdbd keeps accounting: a MariaDB database (its password comes from vault, never from here)."""

    #: database server; localhost means the MariaDB that the slurm_dbd host runs itself
    host: Host = "localhost"
    port: int = Field(default=3306, ge=1, le=65535)
    #: database name (slurmdbd.conf StorageLoc)
    name: Name = "slurm_acct_db"
    #: database user (slurmdbd.conf StorageUser)
    user: Name = "slurm"


class Containers(Strict):
    """Container jobs through enroot and pyxis (``srun --container-image=...``), from NVIDIA's packages."""

    enabled: bool = False
    #: pyxis's SPANK plugin, as NVIDIA's nvslurm-plugin-pyxis package installs it (built for the site's Slurm)
    pyxis_plugin: AbsolutePath = "/usr/lib/x86_64-linux-gnu/slurm/spank_pyxis.so"
    #: job: a job's containers go when it ends; global: named containers stay for their user's later jobs
    container_scope: Literal["job", "global"] = "job"
    sbatch_support: bool = True
    execute_entrypoint: bool = False
    #: pyxis's own runtime files
    pyxis_runtime_path: AbsolutePath = "/run/pyxis"
    #: enroot's directories, each per user (<path>/user-<uid>, created 0700 by the prolog as root): runtime
    #: state, container root filesystems, image layers
    runtime_path: AbsolutePath = "/run/enroot"
    data_path: AbsolutePath = "/var/lib/enroot/data"
    cache_path: AbsolutePath = "/var/lib/enroot/cache"

    @model_validator(mode="after")
    def _plugin_is_a_library(self) -> Containers:
        if not self.pyxis_plugin.endswith(".so"):
            raise ValueError(f"pyxis_plugin {self.pyxis_plugin} is not a shared object (plugstack.conf loads a .so, "
                             "e.g. /usr/lib/x86_64-linux-gnu/slurm/spank_pyxis.so)")
        return self


class SlurmSettings(Strict):
    cluster_name: DnsLabel
    #: process tracking and task plugins; containers (the lab) need linuxproc and none
    proctrack_type: ProctrackType = "proctrack/cgroup"
    task_plugin: TaskPlugin = "task/cgroup,task/affinity"
    #: trust slurm.conf over what slurmd detects (containers report the host's hardware)
    config_overrides: bool = False
    #: accept GPUs without NVML autodetection
    gres_autodetect: Literal["off", "nvml"] = "nvml"
    #: program slurmd runs every health_check_interval seconds to drain sick nodes (HealthCheckProgram);
    #: the gpu role installs /usr/local/sbin/bitten-gpu-health on every compute node. None: no health check
    health_check_program: AbsolutePath | None = None
    health_check_interval: int = Field(default=300, ge=0)
    #: node states the health check runs in (HealthCheckNodeState), e.g. ANY or IDLE,CYCLE
    health_check_node_state: HealthCheckNodeState = "ANY"
    #: program slurmd runs before a job's first step on each node (Prolog); a failure requeues the job
    prolog: AbsolutePath | None = None
    select_type_parameters: SelectTypeParameters = "CR_Core_Memory"
    return_to_service: int = Field(default=1, ge=0, le=2)
    max_job_count: int = Field(default=100000, ge=1)
    #: slurmctld's state (StateSaveLocation); with two controllers a directory on storage both mount (NFS, a
    #: shared volume), which the backup reads when it takes over
    state_save_location: AbsolutePath = "/var/lib/slurm/slurmctld"
    #: seconds the backup waits for an unresponsive primary before it takes control (SlurmctldTimeout)
    slurmctld_timeout: int = Field(default=120, ge=5, le=3600)
    #: extra slurm.conf lines, key -> value, emitted verbatim at the end
    extra: ConfLines = Field(default_factory=dict)
    #: container jobs (enroot + pyxis): plugstack.conf, enroot.conf, the container prolog and epilog
    containers: Containers = Field(default_factory=Containers)
    #: slurmdbd's database
    database: SlurmDatabase = Field(default_factory=SlurmDatabase)
    #: extra slurmdbd.conf lines (e.g. PurgeJobAfter), key -> value, emitted verbatim at the end
    dbd_extra: ConfLines = Field(default_factory=dict)

    @model_validator(mode="after")
    def _health_check_runs(self) -> SlurmSettings:
        if self.health_check_program and self.health_check_interval == 0:
            raise ValueError("health_check_interval 0 never runs health_check_program (HealthCheckInterval=0 "
                             "disables it): give an interval in seconds, e.g. 300")
        return self


class Partition(Strict):
    name: Name
    #: inventory groups whose hosts form the partition
    groups: tuple[str, ...] = Field(min_length=1)
    #: a GPU partition must contain GPU nodes only
    gpu: bool = False
    default: bool = False
    #: MaxTime and DefaultTime, Slurm durations (minutes, H:M:S, D-H:M:S or UNLIMITED)
    max_time: SlurmTime = "2-00:00:00"
    default_time: SlurmTime = "01:00:00"
    #: AllowQoS: the QoS names jobs in this partition may use
    qos: tuple[str, ...] = Field(min_length=1)
    #: TRESBillingWeights, TRES -> weight (e.g. {"CPU": 1.0, "Mem": "0.25G", "GRES/gpu": 1.0})
    billing_weights: BillingWeights = Field(default_factory=dict)
    max_nodes_per_job: int | None = Field(default=None, ge=1)
    state: Literal["UP", "DOWN", "DRAIN", "INACTIVE"] = "UP"
    #: memory a job without --mem gets per allocated GPU (DefMemPerGPU) and per allocated CPU (DefMemPerCPU), a
    #: Slurm size (4096 MiB, 64G); by default each node's share (memory / GPUs, memory / CPUs) of the partition's
    #: smallest node (bitten.slurm.memory)
    def_mem_per_gpu: MemorySize | None = None
    def_mem_per_cpu: MemorySize | None = None

    @model_validator(mode="after")
    def _default_within_max(self) -> Partition:
        most, default = slurm_seconds(self.max_time), slurm_seconds(self.default_time)
        if most is not None and (default is None or default > most):
            raise ValueError(f"default_time {self.default_time} is longer than max_time {self.max_time}: Slurm "
                             "would give jobs without --time more than the partition allows")
        return self


class Qos(Strict):
    name: Name
    description: str = ""
    priority: int = Field(default=0, ge=0)
    max_wall: SlurmTime | None = None
    max_tres_per_user: TresString | None = None
    max_jobs_per_user: int | None = Field(default=None, ge=1)
    grp_tres: TresString | None = None
    flags: tuple[QosFlag, ...] = ()


class Account(Strict):
    name: Name
    description: str = ""
    organization: str = ""
    parent: Name = "root"
    qos: tuple[Name, ...] = ()
    default_qos: Name | None = None
    users: tuple[UserName, ...] = ()

    @model_validator(mode="after")
    def _default_among_qos(self) -> Account:
        if self.default_qos and self.qos and self.default_qos not in self.qos:
            raise ValueError(f"default_qos {self.default_qos!r} is not among the account's qos "
                             f"({', '.join(self.qos)}): Slurm refuses a default QoS the association may not use")
        if self.parent == self.name:
            raise ValueError(f"account {self.name} is its own parent")
        return self


SECTIONS = (
    Section("bitten_slurm", "slurm", SlurmSettings, "cluster-wide Slurm settings", required=True,
            stand_in={"cluster_name": "invalid"}),
    Section("bitten_partitions", "partitions", Partition, "Slurm partitions", shape="list", required=True,
            declares={"partitions": names(), "partition_groups": items("groups")}),
    Section("bitten_qos", "qos", Qos, "Slurm QoS", shape="list", declares={"qos": names()}),
    Section("bitten_accounts", "accounts", Account, "Slurm accounts", shape="list", declares={"accounts": names()}),
)
