"""Build the Integration Module's /etc/ucloud files from the site model, checked by the IM's rules first.

- config.yml: provider (id, hosts, ipc, logs, envoy) and services (Slurm: identity management, file systems, ssh,
  account management and one machine type per ``bitten_ucloud.machine_types`` entry);
- server.yml: the refresh token and the IM's PostgreSQL database;
- secrets.yml: what identity management needs that is secret (FreeIPA's password), else an empty mapping.

Machine types take their sizes from the inventory, completed from the partition's hardware profile: with ``gpu``
and no ``cpu``, each size gets the node's vCPUs in proportion to its GPUs; without ``memory``, each size gets the
node's schedulable memory in proportion to its GPUs (or vCPUs). CPU and GPU models come from the profile.

Secrets never appear in what this module returns unless the caller passes their values: ``secret(name)`` gives a
placeholder for review (``bitten render``) or the value (roles, from vault).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml

from bitten.site import model as m
from bitten.ucloud.im.parser import ConfigInvalid, ConfigIssue, ParsedIM, parse_config, parse_server
from bitten.ucloud.im.products import products_of

#: names of the secrets in the IM's files (vault variables / environment map onto these)
SECRET_REFRESH_TOKEN = "ucloud_refresh_token"  # noqa: S105 - a name, not a secret
SECRET_DB_PASSWORD = "ucloud_db_password"  # noqa: S105
SECRET_FREEIPA_PASSWORD = "ucloud_freeipa_password"  # noqa: S105

Secret = Callable[[str], str]

#: inventory key of each IM machine key, for messages that name the inventory field
INVENTORY_KEYS = {"nameSuffix": "name_suffix", "cpuModel": "cpu_model", "gpuModel": "gpu_model",
                  "memoryModel": "memory_model"}


class UCloudNotConfigured(ValueError):
    pass


@dataclass(frozen=True)
class SizeProblem:
    """A machine type whose sizes cannot be completed from the hardware profile."""

    machine: str
    key: str
    message: str
    fix: str


def _placeholder(name: str) -> str:
    return f"<secret:{name}>"


def _ucloud(site: m.Site) -> m.UCloud:
    if site.ucloud is None:
        raise UCloudNotConfigured(f"site {site.info.name} sets no bitten_ucloud")
    return site.ucloud


# --- machine types ---------------------------------------------------------------------------------------------


def _profiles(site: m.Site, machine: m.MachineType) -> list[m.HardwareProfile]:
    part = site.partition(machine.partition)
    if part is None:
        return []
    names = sorted({n for h in site.partition_nodes(part) if h in site.nodes and (n := site.nodes[h].hardware_profile)})
    return [site.hardware_profiles[n] for n in names if n in site.hardware_profiles]


def machine_sizes(site: m.Site, name: str, machine: m.MachineType) -> tuple[dict[str, Any], list[SizeProblem]]:
    """The IM machine entry for one machine type, and what could not be derived."""
    problems: list[SizeProblem] = []
    profiles = _profiles(site, machine)
    profile = profiles[0] if len(profiles) == 1 else None
    cpu = list(machine.cpu) if machine.cpu is not None else None
    memory = list(machine.memory) if machine.memory is not None else None
    gpu = list(machine.gpu) if machine.gpu is not None else None

    def need_profile(key: str) -> m.HardwareProfile | None:
        if profile is None:
            why = "has nodes of several hardware profiles" if len(profiles) > 1 else "has no nodes with a profile"
            problems.append(SizeProblem(name, key, f"{key} is not given and partition {machine.partition} {why}, "
                                        "so it cannot be derived", f"give {key} explicitly, one entry per size"))
        return profile

    if cpu is None:
        if gpu is None:
            problems.append(SizeProblem(name, "cpu", "cpu is required for a machine type without gpu",
                                        "give cpu: the vCPUs of each product size"))
        elif (p := need_profile("cpu")) is not None:
            if p.gpu is None:
                problems.append(SizeProblem(name, "cpu", f"cannot derive cpu from GPUs: profile {p.model} has "
                                            "no GPUs", "give cpu explicitly"))
            else:
                cpu = [max(1, p.cpu.threads * g // p.gpu.count) for g in gpu]
    if memory is None and (p := need_profile("memory")) is not None:
        total_gb = p.memory_mb // 1024
        if gpu is not None and p.gpu is not None:
            memory = [max(1, total_gb * g // p.gpu.count) for g in gpu]
        elif cpu is not None:
            memory = [max(1, total_gb * c // p.cpu.threads) for c in cpu]
    entry: dict[str, Any] = {"payment": _payment(machine.payment), "partition": machine.partition,
                             "qos": machine.qos}
    if machine.name_suffix:
        entry["nameSuffix"] = machine.name_suffix
    if machine.constraint:
        entry["constraint"] = machine.constraint
    cpu_model = machine.cpu_model or (profile.cpu.model if profile else None)
    gpu_model = machine.gpu_model or (profile.gpu.model if profile and profile.gpu and gpu is not None else None)
    if cpu_model:
        entry["cpuModel"] = cpu_model
    if gpu_model:
        entry["gpuModel"] = gpu_model
    if machine.memory_model:
        entry["memoryModel"] = machine.memory_model
    entry["cpu"] = cpu if cpu is not None else []
    entry["memory"] = memory if memory is not None else []
    if gpu is not None:
        entry["gpu"] = gpu
    if machine.price is not None:
        entry["price"] = list(machine.price)
    return entry, problems


def _payment(payment: m.Payment) -> dict[str, Any]:
    out: dict[str, Any] = {"type": payment.type}
    if payment.type == "Resource":
        out["unit"] = payment.unit
    out["interval"] = payment.interval
    if payment.currency is not None:
        out["currency"] = payment.currency
    return out


def _storage_payment(payment: m.StoragePayment) -> dict[str, Any]:
    out: dict[str, Any] = {"type": payment.type, "unit": payment.unit}
    if payment.interval:
        out["interval"] = payment.interval
    if payment.currency is not None:
        out["currency"] = payment.currency
    if payment.price is not None:
        out["price"] = payment.price
    return out


# --- the three files --------------------------------------------------------------------------------------------


def _host_of(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    scheme = parts.scheme or "https"
    port = parts.port or (443 if scheme == "https" else 80)
    return {"address": parts.hostname or "", "port": port, "scheme": scheme}


def _file_system(fs: m.FileSystem) -> dict[str, Any]:
    locators = {}
    for name, loc in sorted(fs.drive_locators.items()):
        fields = (("entity", loc.entity), ("pattern", loc.pattern), ("script", loc.script), ("title", loc.title),
                  ("freeQuota", loc.free_quota))
        locators[name] = {key: value for key, value in fields if value is not None}
    return {
        "management": {"type": "Scripted", "onQuotaUpdated": fs.management.on_quota_updated,
                       "onUsageReporting": fs.management.on_usage_reporting},
        "payment": _storage_payment(fs.payment),
        "driveLocators": locators,
    }


def config_document(site: m.Site) -> dict[str, Any]:
    """config.yml as a mapping (no secrets in it)."""
    uc = _ucloud(site)
    provider = {
        "id": uc.provider_id,
        "hosts": {
            "ucloud": _host_of(uc.core_url),
            "self": {"address": "127.0.0.1", "port": uc.gateway_port, "scheme": "http"},
            "selfPublic": {"address": uc.public_host, "port": uc.public_port, "scheme": "https"},
        },
        "ipc": {"directory": uc.ipc_directory},
        "logs": {"directory": uc.log_directory,
                 "rotation": {"enabled": True, "retentionPeriodInDays": uc.log_retention_days}},
        "envoy": {"directory": uc.envoy_directory, "executable": uc.envoy_executable},
    }
    idm = uc.identity_management
    identity: dict[str, Any]
    if isinstance(idm, m.ScriptedIdentity):
        identity = {"type": "Scripted", "onUserConnected": idm.on_user_connected,
                    "onProjectUpdated": idm.on_project_updated}
    else:
        identity = {"type": "FreeIPA"}
    file_systems = {name: _file_system(fs) for name, fs in sorted(uc.file_systems.items())}
    services: dict[str, Any] = {"type": "Slurm", "identityManagement": identity, "fileSystems": file_systems}
    if uc.ssh is not None:
        services["ssh"] = {"enabled": uc.ssh.enabled, "installKeys": uc.ssh.install_keys,
                           "host": {"address": uc.ssh.host or uc.public_host, "port": uc.ssh.port}}
    services["slurm"] = {
        "accountManagement": {
            "accounting": {"type": "Automatic"},
            "accountMapper": {"type": "Pattern", "users": uc.account_mapper.users,
                              "projects": uc.account_mapper.projects},
        },
        "machines": {name: machine_sizes(site, name, mt)[0] for name, mt in sorted(uc.machine_types.items())},
    }
    return {"provider": provider, "services": services}


def server_document(site: m.Site, secret: Secret = _placeholder) -> dict[str, Any]:
    db = _ucloud(site).database
    return {
        "refreshToken": secret(SECRET_REFRESH_TOKEN),
        "database": {"host": {"address": db.host, "port": db.port}, "username": db.username,
                     "password": secret(SECRET_DB_PASSWORD), "database": db.name, "ssl": db.ssl},
    }


def secrets_document(site: m.Site, secret: Secret = _placeholder) -> dict[str, Any]:
    idm = _ucloud(site).identity_management
    if isinstance(idm, m.FreeIpaIdentity):
        ipa: dict[str, Any] = {"url": idm.url, "username": idm.username, "password": secret(SECRET_FREEIPA_PASSWORD),
                               "verifyTls": idm.verify_tls, "groupName": idm.group_name,
                               "projectStrategy": idm.project_strategy}
        if idm.ca_cert_file:
            ipa["caCertFile"] = idm.ca_cert_file
        return {"freeipa": ipa}
    return {}


def secret_names(site: m.Site) -> list[str]:
    """The secrets the IM's files of this site need."""
    names = [SECRET_REFRESH_TOKEN, SECRET_DB_PASSWORD]
    if isinstance(_ucloud(site).identity_management, m.FreeIpaIdentity):
        names.append(SECRET_FREEIPA_PASSWORD)
    return names


# --- YAML, checked ----------------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    pass


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(isinstance(v, int | float | str) and not isinstance(v, bool) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def to_yaml(document: Mapping[str, Any]) -> str:
    if not document:
        return "{}\n"
    return yaml.dump(dict(document), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120,
                     allow_unicode=True)


#: id(site) -> (the site, what check found): render asks once per IM file, the site is the same each time
_checked: dict[int, tuple[weakref.ref[m.Site], list[SizeProblem], list[ConfigIssue]]] = {}


def check(site: m.Site) -> tuple[list[SizeProblem], list[ConfigIssue]]:
    """Everything wrong with the IM files this site would get: underivable sizes and the IM's rule violations."""
    hit = _checked.get(id(site))
    if hit is not None and hit[0]() is site:
        return list(hit[1]), list(hit[2])
    sizes, issues = _check(site)
    for key in [k for k, v in _checked.items() if v[0]() is None]:
        del _checked[key]
    _checked[id(site)] = (weakref.ref(site), sizes, issues)
    return list(sizes), list(issues)


def _check(site: m.Site) -> tuple[list[SizeProblem], list[ConfigIssue]]:
    uc = _ucloud(site)
    sizes = [p for name, mt in sorted(uc.machine_types.items()) for p in machine_sizes(site, name, mt)[1]]
    parsed = ParsedIM()
    parse_server(to_yaml(server_document(site)), "server.yml", parsed.issues)
    parse_config(to_yaml(config_document(site)), "config.yml", secrets_text=to_yaml(secrets_document(site)),
                 check_files=False, result=parsed)
    if sizes:
        # a machine with empty lists is reported as a size problem, not twice
        broken = {p.machine for p in sizes}
        parsed.issues[:] = [i for i in parsed.issues if not (i.path[:3] == ("services", "slurm", "machines")
                                                            and len(i.path) > 3 and i.path[3] in broken)]
    return sizes, parsed.issues


def parsed(site: m.Site) -> ParsedIM:
    result = ParsedIM()
    parse_config(to_yaml(config_document(site)), "config.yml", secrets_text=to_yaml(secrets_document(site)),
                 check_files=False, result=result)
    return result


def expected_products(site: m.Site) -> list[dict[str, Any]]:
    """The products the IM registers for this site (what `bitten ucloud check` looks for on Core)."""
    return products_of(parsed(site))


def render(site: m.Site, which: str, secret: Secret = _placeholder) -> str:
    """The text of config.yml, server.yml or secrets.yml; raises ConfigInvalid when the IM would refuse it."""
    sizes, issues = check(site)
    if sizes or issues:
        raise ConfigInvalid([*issues, *(ConfigIssue("config.yml", None, ("services", "slurm", "machines",
                                                                         p.machine, p.key), p.message)
                                        for p in sizes)])
    def plain(name: str) -> str:
        # values from Ansible are str subclasses (tagged with their origin) that YAML cannot represent
        return str.__str__(secret(name))

    documents: dict[str, Callable[[], Mapping[str, Any]]] = {
        "config": lambda: config_document(site),
        "server": lambda: server_document(site, plain),
        "secrets": lambda: secrets_document(site, plain),
    }
    return to_yaml(documents[which]())
