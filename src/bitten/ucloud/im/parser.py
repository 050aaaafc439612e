"""The UCloud Integration Module's configuration rules, for /etc/ucloud/{server,config,secrets}.yml and ucloud_key.pub.

Written from the behaviour of the IM's parser (UCloud provider-integration/im2, pkg/config: 00_module.go and
slurm.go) for the Slurm integration: the same mandatory keys, enums, list-length and payment rules, and the same
file checks when the files are parsed on the frontend. It is one implementation with three users: bitten's site
validation (through the config bitten builds from the inventory), the config builder before any file is written,
and the IM test double at start-up.

Issues come in two kinds. ``im_rule=True``: the IM refuses to start (or, for the few it only logs, logs an error);
``im_rule=False``: the IM would accept the file but misbehave (two products with the same name, where Core keeps one;
a Resource payment without a unit, which registers products priced 0). bitten treats both as errors.

Standard library and PyYAML only (cryptography optional): the IM test double ships this module to hosts without
bitten.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PAYMENT_TYPES = ("Resource", "Money")
PAYMENT_INTERVALS = ("Minutely", "Hourly", "Daily")
MACHINE_UNITS = ("Cpu", "Memory", "Gpu")
STORAGE_UNITS = ("GB", "TB", "PB", "EB", "GiB", "TiB", "PiB", "EiB")
NAME_SUFFIXES = ("Cpu", "Gpu", "Memory", "CpuV2", "GpuV2", "MemoryV2")
SERVICE_TYPES = ("Slurm", "Kubernetes")
IDENTITY_TYPES = ("Scripted", "FreeIPA", "OIDC")
FS_MANAGEMENT_TYPES = ("GPFS", "Scripted")
LOCATOR_ENTITIES = ("User", "Project", "MemberFiles")
ACCOUNTING_TYPES = ("Automatic", "Scripted")
ACCOUNT_MAPPER_TYPES = ("Pattern", "Scripted")
ENVOY_LISTEN_MODES = ("Unix", "Tcp")
PROJECT_STRATEGIES = ("Default", "Date", "UUID")


@dataclass(frozen=True)
class ConfigIssue:
    file: str
    line: int | None
    #: keys from the document root, e.g. ("services", "slurm", "machines", "b200", "gpu")
    path: tuple[str, ...]
    message: str
    im_rule: bool = True

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = ".".join(self.path)
        return f"{where}: {key + ': ' if key else ''}{self.message}"


class ConfigInvalid(Exception):
    """The IM configuration breaks the IM's rules; carries every issue."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


# --- parsed results -----------------------------------------------------------------------------------------


@dataclass
class MachineConfig:
    cpu: int
    memory_gb: int
    gpu: int
    price: float


@dataclass
class MachineGroup:
    name: str
    name_suffix: str
    configs: list[MachineConfig]
    cpu_model: str = ""
    gpu_model: str = ""
    memory_model: str = ""
    constraint: str = ""


@dataclass
class PaymentInfo:
    type: str = ""
    unit: str = ""
    interval: str = ""
    currency: str = ""
    price: float = 0.0


@dataclass
class MachineCategory:
    name: str
    payment: PaymentInfo
    partition: str
    qos: str | None
    groups: list[MachineGroup]


@dataclass
class StorageCategory:
    name: str
    payment: PaymentInfo


@dataclass
class ServerConfig:
    refresh_token: str = ""
    db_host: str = ""
    db_port: int = 5432
    db_user: str = ""
    db_password: str = ""
    db_name: str = ""
    db_ssl: bool = False


@dataclass
class ParsedIM:
    """What the IM would know after parsing its configuration directory (empty parts where parsing failed)."""

    issues: list[ConfigIssue] = field(default_factory=list)
    provider_id: str = ""
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    envoy: dict[str, Any] = field(default_factory=dict)
    ipc_directory: str = ""
    log_directory: str = ""
    machines: list[MachineCategory] = field(default_factory=list)
    storage: list[StorageCategory] = field(default_factory=list)
    server: ServerConfig | None = None
    public_key_der: bytes | None = None

    @property
    def errors(self) -> list[ConfigIssue]:
        """Issues the IM itself stops on (or logs as errors)."""
        return [i for i in self.issues if i.im_rule]

    @property
    def ok(self) -> bool:
        return not self.issues


# --- a YAML node with its place, for messages like the IM's ("<file> at line N") ----------------------------

_constructor = yaml.SafeLoader("")


class _Ctx:
    def __init__(self, file: str, issues: list[ConfigIssue], check_files: bool) -> None:
        self.file = file
        self.issues = issues
        self.check_files = check_files

    def report(self, node: N | None, message: str, *, path: tuple[str, ...] = (), im_rule: bool = True) -> None:
        line = node.line if node is not None else None
        self.issues.append(ConfigIssue(self.file, line, node.path if node is not None else path, message, im_rule))


@dataclass
class N:
    """A YAML node of a parsed document, with its key path."""

    ctx: _Ctx
    node: yaml.Node
    path: tuple[str, ...] = ()

    @property
    def line(self) -> int:
        return int(self.node.start_mark.line) + 1

    @property
    def is_mapping(self) -> bool:
        return isinstance(self.node, yaml.MappingNode)

    def items(self) -> Iterator[tuple[str, N]]:
        if isinstance(self.node, yaml.MappingNode):
            for key, value in self.node.value:
                name = str(key.value)
                yield name, N(self.ctx, value, (*self.path, name))

    def child(self, key: str) -> N | None:
        for name, value in self.items():
            if name == key:
                return value
        return None

    def has(self, key: str) -> bool:
        return self.child(key) is not None

    def require(self, key: str) -> N | None:
        if not self.is_mapping:
            self.ctx.report(self, f"expected a dictionary but got {_kind(self.node)}")
            return None
        value = self.child(key)
        if value is None:
            self.ctx.report(self, f"could not find property '{key}' but it is mandatory", path=(*self.path, key))
        return value

    def value(self) -> Any:
        return _constructor.construct_object(self.node, deep=True)

    # typed accessors: None when missing or wrong (an issue is recorded unless optional and missing)
    def text(self, key: str, *, required: bool = True) -> str | None:
        node = self.require(key) if required else self.child(key)
        if node is None:
            return None
        if not isinstance(node.node, yaml.ScalarNode) or node.value() is None:
            self.ctx.report(node, "Expected a string here")
            return None
        return str(node.value())

    def boolean(self, key: str, *, required: bool = True) -> bool | None:
        node = self.require(key) if required else self.child(key)
        if node is None:
            return None
        value = node.value()
        if not isinstance(value, bool):
            if required:
                self.ctx.report(node, "Expected a boolean (true or false) here")
            return None
        return value

    def integer(self, key: str, *, required: bool = True) -> int | None:
        node = self.require(key) if required else self.child(key)
        if node is None:
            return None
        value = node.value()
        if isinstance(value, bool) or not isinstance(value, int):
            self.ctx.report(node, "Expected an integer here")
            return None
        return value

    def number(self, key: str, *, required: bool = True) -> float | None:
        node = self.require(key) if required else self.child(key)
        if node is None:
            return None
        value = node.value()
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.ctx.report(node, "Expected a float here")
            return None
        return float(value)

    def enum(self, key: str, options: tuple[str, ...], *, required: bool = True) -> str | None:
        text = self.text(key, required=required)
        if text is None:
            return None
        if text not in options:
            self.ctx.report(self.child(key), f"expected '{text}' to be one of [{' '.join(options)}]")
            return None
        return text

    def numbers(self, key: str, kind: type, *, required: bool = True) -> tuple[list[Any] | None, N | None]:
        node = self.require(key) if required else self.child(key)
        if node is None:
            return None, None
        value = node.value()
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, kind | int) for v in value):
            name = "integers" if kind is int else "numbers"
            self.ctx.report(node, f"Failed to parse value: expected a list of {name}")
            return None, node
        return [kind(v) for v in value], node

    def folder(self, key: str, *, writable: bool) -> str | None:
        text = self.text(key)
        if text is None or not self.ctx.check_files:
            return text
        node = self.child(key)
        if not os.path.isdir(text):
            self.ctx.report(node, f"Expected this value to point to a valid directory, but {text} is not a valid "
                                  "directory!")
            return None
        try:
            os.listdir(text)
        except OSError as exc:
            self.ctx.report(node, f"Expected '{text}' to be readable but failed to read a directory listing "
                                  f"[UID={os.getuid()} GID={os.getgid()}] ({exc.strerror}).")
            return None
        if writable:
            probe = Path(text) / f".{secrets.token_hex(8)}"
            try:
                probe.write_text("UCloud/IM test file")
                probe.unlink()
            except OSError as exc:
                self.ctx.report(node, f"Expected '{text}' to be writeable but failed to create a file "
                                      f"[UID={os.getuid()} GID={os.getgid()}] ({exc.strerror}).")
                return None
        return text

    def file(self, key: str, *, required: bool = True) -> str | None:
        text = self.text(key, required=required)
        if text is None or not self.ctx.check_files:
            return text
        node = self.child(key)
        if not os.path.isfile(text) or not os.access(text, os.R_OK):
            self.ctx.report(node, f"Expected this value to point to a readable file, but {text} is not a readable "
                                  f"file [UID={os.getuid()} GID={os.getgid()}]")
            return None
        return text


def _kind(node: yaml.Node) -> str:
    return {yaml.ScalarNode: "a scalar", yaml.SequenceNode: "a list", yaml.MappingNode: "a dictionary"}.get(
        type(node), "something else")


def _compose(text: str, ctx: _Ctx) -> N | None:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        ctx.report(None, "Failed to parse this configuration file as valid YAML. Please check for errors. "
                         f"Underlying error message: {exc}.")
        return None
    if node is None:
        ctx.report(None, "document is empty")
        return None
    return N(ctx, node)


# --- server.yml ---------------------------------------------------------------------------------------------


def _host(ctx: _Ctx, parent: N, key: str, *, default_port: int | None = None) -> dict[str, Any] | None:
    node = parent.require(key)
    if node is None:
        return None
    if not node.is_mapping:
        ctx.report(node, "Failed to parse value: expected a dictionary with address, port and scheme")
        return None
    address = node.text("address", required=False) or ""
    port = node.integer("port", required=False)
    scheme = node.text("scheme", required=False) or ""
    if port is None and default_port is not None:
        port = default_port
    if port is None or port <= 0 or port >= 65536:
        ctx.report(node, "Port 0 is not a valid choice. Did you remember to specify a port?" if not port
                   else f"Invalid TCP/IP port specified {port}")
        return None
    return {"address": address, "port": port, "scheme": scheme}


def parse_server(text: str, file: str = "server.yml", issues: list[ConfigIssue] | None = None) -> ServerConfig:
    issues = issues if issues is not None else []
    ctx = _Ctx(file, issues, check_files=False)
    root = _compose(text, ctx)
    result = ServerConfig()
    if root is None:
        return result
    result.refresh_token = root.text("refreshToken") or ""
    db = root.require("database")
    if db is not None:
        host = _host(ctx, db, "host", default_port=5432)
        if host:
            result.db_host, result.db_port = host["address"], host["port"]
        result.db_user = db.text("username") or ""
        result.db_password = db.text("password") or ""
        result.db_name = db.text("database") or ""
        result.db_ssl = bool(db.boolean("ssl"))
    return result


# --- secrets.yml ----------------------------------------------------------------------------------------------


def _parse_secrets(text: str | None, file: str, issues: list[ConfigIssue]) -> N | None:
    if text is None:
        return None
    return _compose(text, _Ctx(file, issues, check_files=False))


def _require_secrets(ctx: _Ctx, secrets_root: N | None, section: str, where: N, reason: str) -> N | None:
    if secrets_root is None:
        ctx.report(where, f"Could not find secrets.yaml but it is required for this configuration. {reason}")
        return None
    return secrets_root.require(section)


# --- config.yml -----------------------------------------------------------------------------------------------


def _parse_provider(ctx: _Ctx, node: N, result: ParsedIM) -> None:
    result.provider_id = node.text("id") or ""
    hosts = node.require("hosts")
    if hosts is not None:
        for key in ("ucloud", "self"):
            host = _host(ctx, hosts, key)
            if host:
                result.hosts[key] = host
        for key, fallback in (("ucloudPublic", "ucloud"), ("selfPublic", "self")):
            if hosts.has(key):
                host = _host(ctx, hosts, key, default_port=0)
                if host:
                    result.hosts[key] = host
            elif fallback in result.hosts:
                result.hosts[key] = result.hosts[fallback]
    ipc = node.require("ipc")
    if ipc is not None:
        result.ipc_directory = ipc.folder("directory", writable=True) or ""
    logs = node.require("logs")
    if logs is not None:
        result.log_directory = logs.folder("directory", writable=True) or ""
        rotation = logs.child("rotation")
        if rotation is not None and rotation.boolean("enabled", required=False):
            days = rotation.integer("retentionPeriodInDays", required=False)
            if not days or days <= 0:
                ctx.report(rotation, "retentionPeriodInDays must be specified and must be greater than zero")
    envoy = node.require("envoy")
    if envoy is not None:
        directory = envoy.text("directory", required=False) or ""
        managed = bool(envoy.boolean("managedExternally", required=False))
        mode = envoy.enum("listenMode", ENVOY_LISTEN_MODES, required=False) or "Unix"
        if not managed or directory or mode == "Unix":
            envoy.folder("directory", writable=True)
        executable = "" if managed else (envoy.file("executable") or "")
        result.envoy = {"directory": directory, "managedExternally": managed, "listenMode": mode,
                        "executable": executable}


def _parse_payment(ctx: _Ctx, node: N, units: tuple[str, ...], *, with_price: bool) -> PaymentInfo | None:
    before = len(ctx.issues)
    info = PaymentInfo()
    info.type = node.enum("type", PAYMENT_TYPES) or ""
    if node.has("unit"):
        info.unit = node.enum("unit", units) or ""
    if node.has("interval"):
        info.interval = node.enum("interval", PAYMENT_INTERVALS) or ""
    if info.type == "Money":
        if with_price:
            info.price = node.number("price") or 0.0
        info.currency = node.text("currency") or ""
        if with_price and info.price <= 0 and len(ctx.issues) == before:
            ctx.report(node, "A price greater than 0 must be specified with type = Money")
    elif node.has("price"):
        # the IM logs this one and carries on
        ctx.report(node, "A price cannot be specified with type = Resource")
    if info.type == "Resource" and not info.unit:
        ctx.report(node, "a unit is required with type = Resource: the IM would register products with price 0 "
                         f"and no accounting unit (one of {', '.join(units)})", im_rule=False)
    return None if len(ctx.issues) > before else info


def _parse_group(ctx: _Ctx, name: str, node: N) -> MachineGroup | None:
    before = len(ctx.issues)
    constraint = node.text("constraint", required=False) or ""
    models = {key: node.text(key, required=False) or "" for key in ("cpuModel", "gpuModel", "memoryModel")}
    cpu, _ = node.numbers("cpu", int)
    memory, memory_node = node.numbers("memory", int)
    gpu, gpu_node = node.numbers("gpu", int, required=False)
    price, _ = node.numbers("price", float, required=False)
    if cpu is not None:
        count = len(cpu)
        if count == 0:
            ctx.report(node, "You must specify at least one machine via cpu, memory (+ gpu/price)")
        if gpu is not None and len(gpu) != count:
            ctx.report(gpu_node, f"gpu must have the same length as cpu ({count} != {len(gpu)})")
        if price is not None and len(price) != count:
            # the IM reports this at the gpu node (or without a line when gpu is absent)
            ctx.report(gpu_node or node, f"price must have the same length as cpu ({count} != {len(price)})")
        if memory is not None and len(memory) != count:
            ctx.report(memory_node, f"memory must have the same length as cpu ({count} != {len(memory)})")
        if any(v <= 0 for v in cpu):
            ctx.report(node, "cpu count must be greater than zero")
    if memory is not None and any(v <= 0 for v in memory):
        ctx.report(node, "memory must be greater than zero")
    if price is not None and any(v <= 0 for v in price):
        ctx.report(node, "price must be greater than zero")
    if gpu is not None and any(v < 0 for v in gpu):
        ctx.report(node, "gpu count must be positive")
    if node.has("nameSuffix"):
        suffix = node.enum("nameSuffix", NAME_SUFFIXES) or ""
    else:
        suffix = "Gpu" if gpu is not None else "Cpu"
    if len(ctx.issues) > before or cpu is None or memory is None:
        return None
    configs = [MachineConfig(cpu=c, memory_gb=memory[i], gpu=gpu[i] if gpu else 0, price=price[i] if price else 0.0)
               for i, c in enumerate(cpu)]
    return MachineGroup(name=name, name_suffix=suffix, configs=configs, cpu_model=models["cpuModel"],
                        gpu_model=models["gpuModel"], memory_model=models["memoryModel"], constraint=constraint)


def _parse_machines(ctx: _Ctx, slurm: N, result: ParsedIM) -> None:
    machines = slurm.require("machines")
    if machines is None:
        return
    if not machines.is_mapping:
        ctx.report(slurm, "expected machines to be a dictionary")
        return
    for name, node in machines.items():
        before = len(ctx.issues)
        payment_node = node.require("payment")
        payment = _parse_payment(ctx, payment_node, MACHINE_UNITS, with_price=False) if payment_node else None
        partition = node.text("partition") or ""
        qos = node.text("qos", required=False) or None
        groups: list[MachineGroup] = []
        groups_node = node.child("groups")
        if groups_node is None:
            group = _parse_group(ctx, name, node)
            groups = [group] if group else []
        elif not groups_node.is_mapping:
            ctx.report(groups_node, "expected groups to be a dictionary")
        else:
            for group_name, group_node in groups_node.items():
                group = _parse_group(ctx, group_name, group_node)
                if group:
                    groups.append(group)
        if payment is not None and payment.type == "Money":
            if any(c.price == 0 for g in groups for c in g.configs):
                ctx.report(node, "price must be specified for all machine groups when payment type is Money!")
        elif payment is not None and any(c.price != 0 for g in groups for c in g.configs):
            ctx.report(node, "price must not be specified for all machine groups when payment type is Resource!")
        if len(ctx.issues) == before and payment is not None:
            result.machines.append(MachineCategory(name, payment, partition, qos, groups))


def _parse_file_systems(ctx: _Ctx, services: N, secrets_root: N | None, unmanaged: bool,
                        result: ParsedIM) -> None:
    fs_root = services.require("fileSystems")
    if fs_root is None:
        return
    if not fs_root.is_mapping:
        ctx.report(fs_root, "expected fileSystems to be a dictionary")
        return
    for name, fs in fs_root.items():
        before = len(ctx.issues)
        if not unmanaged:
            management = fs.require("management")
            kind = management.enum("type", FS_MANAGEMENT_TYPES) if management else None
            if kind == "GPFS" and management is not None:
                gpfs = _require_secrets(ctx, secrets_root, "gpfs", management, "GPFS management")
                entry = gpfs.require(name) if gpfs else None
                if entry is not None:
                    entry.text("username")
                    entry.text("password")
                    _host(entry.ctx, entry, "host")
                    entry.require("mapping")
            elif kind == "Scripted" and management is not None:
                management.text("onQuotaUpdated")
                management.text("onUsageReporting")
        elif fs.has("management"):
            ctx.report(fs.child("management"), "management must be omitted when unmanaged is true")
        payment_node = fs.require("payment")
        payment = _parse_payment(ctx, payment_node, STORAGE_UNITS, with_price=True) if payment_node else None
        locators = fs.require("driveLocators")
        if locators is not None and not locators.is_mapping:
            ctx.report(locators, "expected driveLocators to be a dictionary")
        elif locators is not None:
            count = 0
            for _, locator in locators.items():
                count += 1
                entity = locator.enum("entity", LOCATOR_ENTITIES) if not unmanaged else None
                pattern = locator.text("pattern", required=False)
                script = locator.text("script", required=False)
                locator.text("title", required=False)
                if not pattern and not script:
                    ctx.report(locator, "You must specify either a pattern or a script!")
                quota = locator.integer("freeQuota", required=False)
                if quota is not None and entity != "User":
                    ctx.report(locator, "freeQuota can only be specified for user mappings")
                if quota is None and entity == "User":
                    ctx.report(locator, "freeQuota must be specified for user mappings")
            if count == 0:
                ctx.report(fs_root, "You must specify at least one driveLocator!")
        if len(ctx.issues) == before and payment is not None:
            result.storage.append(StorageCategory(name, payment))


def _parse_identity(ctx: _Ctx, services: N, secrets_root: N | None, unmanaged: bool) -> None:
    node = services.child("identityManagement")
    kind = "None"
    if node is not None:
        kind = node.enum("type", IDENTITY_TYPES) or "invalid"
        if kind == "Scripted":
            node.file("onUserConnected")
            node.file("onProjectUpdated")
        elif kind == "FreeIPA":
            ipa = _require_secrets(ctx, secrets_root, "freeipa", node, "FreeIPA identity management has secret "
                                   "configuration!")
            if ipa is not None:
                ipa.text("url")
                ipa.text("username")
                ipa.text("password")
                if ipa.text("caCertFile", required=False):
                    ipa.file("caCertFile")
                strategy = ipa.text("projectStrategy", required=False)
                if strategy and strategy not in PROJECT_STRATEGIES:
                    ctx.report(ipa.child("projectStrategy"), f"{strategy}: Unknown title strategy, use one of: "
                               "'Default', 'Date', 'UUID'")
        elif kind == "OIDC":
            oidc = _require_secrets(ctx, secrets_root, "oidc", node, "OIDC identity management has secret "
                                    "configuration!")
            if oidc is not None:
                oidc.file("onUserConnected")
                for key in ("issuer", "clientId", "clientSecret"):
                    oidc.text(key)
    works_unmanaged = kind in ("OIDC", "None")
    if unmanaged and not works_unmanaged:
        ctx.report(services, "identityManagement must be omitted when unmanaged is true")
    if not unmanaged and works_unmanaged and kind == "None":
        # the IM logs this and starts without identity management
        ctx.report(services, "identityManagement is required when managed")


def _parse_slurm(ctx: _Ctx, services: N, unmanaged: bool, result: ParsedIM) -> None:
    slurm = services.require("slurm")
    if slurm is None:
        return
    if not unmanaged:
        management = slurm.require("accountManagement")
        if management is not None:
            accounting = management.require("accounting")
            if accounting is not None and accounting.enum("type", ACCOUNTING_TYPES) == "Scripted":
                for key in ("onUsageReporting", "onQuotaUpdated", "onProjectUpdated"):
                    accounting.file(key)
            mapper = management.require("accountMapper")
            if mapper is not None:
                kind = mapper.enum("type", ACCOUNT_MAPPER_TYPES)
                if kind == "Pattern":
                    mapper.text("users")
                    mapper.text("projects")
                elif kind == "Scripted":
                    mapper.file("script")
    elif slurm.has("accountManagement"):
        ctx.report(slurm.child("accountManagement"), "accountManagement must be omitted when unmanaged is true")
    web = slurm.child("web")
    if web is not None and web.boolean("enabled", required=False):
        web.text("prefix")
        web.text("suffix")
    _parse_machines(ctx, slurm, result)


def _parse_ssh(services: N) -> None:
    ssh = services.child("ssh")
    if ssh is None:
        return
    ssh.boolean("enabled")
    ssh.boolean("installKeys")
    _host(ssh.ctx, ssh, "host")


def parse_config(text: str, file: str = "config.yml", *, secrets_text: str | None = None,
                 secrets_file: str = "secrets.yml", check_files: bool = False,
                 result: ParsedIM | None = None) -> ParsedIM:
    """Parse config.yml (with secrets.yml when given) as the IM's server mode does."""
    result = result if result is not None else ParsedIM()
    ctx = _Ctx(file, result.issues, check_files)
    secrets_root = _parse_secrets(secrets_text, secrets_file, result.issues)
    root = _compose(text, ctx)
    if root is None:
        return result
    provider = root.require("provider")
    if provider is not None:
        _parse_provider(ctx, provider, result)
    services = root.require("services")
    if services is None:
        return result
    kind = services.enum("type", SERVICE_TYPES)
    if kind == "Kubernetes":
        ctx.report(services.child("type"), "this parser covers the Slurm integration only", im_rule=False)
        return result
    if kind is None:
        return result
    unmanaged = bool(services.boolean("unmanaged", required=False))
    _parse_identity(ctx, services, secrets_root, unmanaged)
    _parse_file_systems(ctx, services, secrets_root, unmanaged, result)
    _parse_ssh(services)
    _parse_slurm(ctx, services, unmanaged, result)
    _product_rules(ctx, services, result)
    return result


# --- product names (the IM's buildMachineName; products.py builds the products themselves) ---


def resource_amount(resource: str, config: MachineConfig) -> int:
    """How many of ``resource`` (Cpu, Gpu, Memory) one product size gives."""
    return {"Cpu": config.cpu, "Gpu": config.gpu, "Memory": config.memory_gb}.get(resource, 0)


def machine_product_name(category: str, group: MachineGroup, config: MachineConfig) -> str:
    """``<group>-<n>`` for the Cpu/Gpu/Memory suffixes, ``<category>-<n>-vcpu|gpu|gb`` for the V2 ones."""
    suffix = group.name_suffix
    if suffix == "CpuV2":
        return f"{category}-{config.cpu}-vcpu"
    if suffix == "GpuV2":
        return f"{category}-{config.gpu}-gpu"
    if suffix == "MemoryV2":
        return f"{category}-{config.memory_gb}-gb"
    return f"{group.name}-{resource_amount(suffix, config)}"



def _product_rules(ctx: _Ctx, services: N, result: ParsedIM) -> None:
    """Rules bitten adds: the IM accepts these but Core would end up with fewer products than configured."""
    categories: dict[str, str] = {}
    for fs in result.storage:
        categories[fs.name] = "fileSystems"
    for machine in result.machines:
        where = services.child("slurm")
        node = where.child("machines") if where else None
        node = node.child(machine.name) if node else None
        if machine.name in categories:
            ctx.report(node, f"product category {machine.name!r} is also a file system: categories share one "
                             "namespace on Core", path=("services", "slurm", "machines", machine.name), im_rule=False)
        categories[machine.name] = "machines"
        seen: dict[str, str] = {}
        for group in machine.groups:
            for config in group.configs:
                name = machine_product_name(machine.name, group, config)
                if name in seen:
                    ctx.report(node, f"two sizes give the product name {name!r} (nameSuffix {group.name_suffix}): "
                                     "Core would keep only one; make the named resource differ between sizes or "
                                     "choose another nameSuffix",
                               path=("services", "slurm", "machines", machine.name), im_rule=False)
                seen[name] = group.name


# --- ucloud_key.pub -------------------------------------------------------------------------------------------


def parse_public_key(text: str, file: str = "ucloud_key.pub",
                     issues: list[ConfigIssue] | None = None) -> bytes | None:
    """Core's per-provider RSA public key as the IM reads it: bare base64 of the DER SubjectPublicKeyInfo."""
    issues = issues if issues is not None else []
    body = text.strip()
    if "-----BEGIN" in body:
        issues.append(ConfigIssue(file, None, (), "Failed to parse/locate public key: write the bare base64 DER "
                                  "key without the PEM header and footer lines"))
        return None
    try:
        der = base64.b64decode("".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        issues.append(ConfigIssue(file, None, (), "Failed to parse/locate public key: not base64"))
        return None
    try:
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.hazmat.primitives.serialization import load_der_public_key
    except ImportError:  # pragma: no cover - hosts without cryptography accept any DER
        return der if der else None
    try:
        key = load_der_public_key(der)
    except ValueError:
        issues.append(ConfigIssue(file, None, (), "Failed to parse/locate public key: not a DER public key"))
        return None
    if not isinstance(key, rsa.RSAPublicKey):
        issues.append(ConfigIssue(file, None, (), "Failed to parse/locate public key: not an RSA key"))
        return None
    return der


# --- a whole configuration directory ------------------------------------------------------------------------


def _read(directory: Path, name: str) -> tuple[Path, str | None]:
    for ext in (".yml", ".yaml"):
        path = directory / f"{name}{ext}"
        if path.exists():
            try:
                return path, path.read_text(encoding="utf-8")
            except OSError:
                return path, None
    return directory / f"{name}.yml", None


def parse_directory(directory: str | Path, *, check_files: bool = True) -> ParsedIM:
    """Parse /etc/ucloud as the IM does at start-up in server mode: server, secrets, config, then the key."""
    directory = Path(directory)
    result = ParsedIM()
    server_path, server_text = _read(directory, "server")
    if server_text is None:
        result.issues.append(ConfigIssue(str(server_path), None, (), "Failed to read file. Does it exist/is it "
                                         f"readable by the UCloud process? Current user is uid={os.getuid()} "
                                         f"gid={os.getgid()}."))
        return result
    result.server = parse_server(server_text, str(server_path), result.issues)
    if result.issues:
        return result
    secrets_path, secrets_text = _read(directory, "secrets")
    config_path, config_text = _read(directory, "config")
    if config_text is None:
        result.issues.append(ConfigIssue(str(config_path), None, (), "Failed to read file. Does it exist/is it "
                                         "readable by the UCloud process?"))
        return result
    parse_config(config_text, str(config_path), secrets_text=secrets_text, secrets_file=str(secrets_path),
                 check_files=check_files, result=result)
    for name in ("ucloud_key.pub", "ucloud_crt.pem"):
        key_path = directory / name
        if key_path.exists():
            result.public_key_der = parse_public_key(key_path.read_text(encoding="utf-8"), str(key_path),
                                                     result.issues)
            break
    else:
        result.issues.append(ConfigIssue(str(directory), None, (), f"Failed to parse/locate public key in {directory}"))
    return result
