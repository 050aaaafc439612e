"""The UCloud section (``bitten_ucloud``): the provider, its machine types, identity management, file systems,
the Integration Module's database. bitten.ucloud builds the IM's /etc/ucloud files from these and checks them with
the IM's own parser rules (bitten.ucloud.im.parser)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from bitten.site.model.types import Name, Section, Strict, keys
from bitten.site.model.values import AbsolutePath, Host, HttpUrl

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
    url: HttpUrl
    username: str
    group_name: str = "ucloud_users"
    verify_tls: bool = True
    ca_cert_file: AbsolutePath | None = None
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

    host: Host = "127.0.0.1"
    port: int = Field(default=5432, ge=1, le=65535)
    name: Name = "ucloud"
    username: Name = "ucloud"
    ssl: bool = False


class UCloudSsh(Strict):
    enabled: bool = True
    install_keys: bool = True
    #: host users' SSH clients reach (default: public_host)
    host: Host | None = None
    port: int = Field(default=22, ge=1, le=65535)


class UCloud(Strict):
    provider_id: Name
    #: UCloud/Core, e.g. https://cloud.sdu.dk
    core_url: HttpUrl
    #: public name of the frontend that Core reaches (envoy behind TLS)
    public_host: Host
    public_port: int = Field(default=443, ge=1, le=65535)
    machine_types: dict[str, MachineType] = Field(default_factory=dict)
    identity_management: Annotated[ScriptedIdentity | FreeIpaIdentity, Field(discriminator="type")] = Field(
        default_factory=ScriptedIdentity)
    file_systems: dict[str, FileSystem] = Field(default_factory=_default_file_systems)
    account_mapper: AccountMapper = Field(default_factory=AccountMapper)
    database: UCloudDatabase = Field(default_factory=UCloudDatabase)
    ssh: UCloudSsh | None = None
    #: where the IM runs envoy and its IPC socket (the RPM's layout)
    envoy_executable: AbsolutePath = "/opt/ucloud/envoy/envoy"
    envoy_directory: AbsolutePath = "/var/run/ucloud/envoy"
    ipc_directory: AbsolutePath = "/var/run/ucloud"
    log_directory: AbsolutePath = "/var/log/ucloud"
    log_retention_days: int = Field(default=180, ge=1)
    #: envoy's local port, behind the TLS terminator on public_port
    gateway_port: int = Field(default=8889, ge=1, le=65535)


SECTIONS = (
    Section("bitten_ucloud", "ucloud", UCloud, "UCloud provider and machine types",
            declares={"machine_types": keys("machine_types")}),
)
