"""Cross-checks of the Slurm capability: controller and accounting hosts, partitions, accounts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from bitten.site import model as m
from bitten.site.locate import Declared, Locator
from bitten.site.model.values import memory_mib
from bitten.site.problems import Problem


def check_slurm_roles(site: m.Site, locator: Locator, declared: Declared) -> Iterator[Problem]:
    source = locator.find(None, "bitten_slurm")
    if not site.controllers:
        yield Problem(file=source, field=f"group {m.GROUP_CONTROLLER}", message="no Slurm controller host",
                      fix=f"put one host (two for HA) in group {m.GROUP_CONTROLLER}")
    elif len(site.controllers) > 2:
        yield Problem(file=source, field=f"group {m.GROUP_CONTROLLER}",
                      message=f"{len(site.controllers)} controllers; Slurm runs one primary and one backup",
                      fix=f"keep one or two hosts in group {m.GROUP_CONTROLLER}")
    elif len(site.controllers) == 2 and "state_save_location" not in site.slurm.model_fields_set:
        yield Problem(file=source, field="bitten_slurm.state_save_location",
                      message=f"two controllers ({', '.join(site.controllers)}) need a StateSaveLocation both reach: "
                      "the backup takes over from the primary's saved state",
                      fix="set bitten_slurm.state_save_location to a directory on shared storage (NFS) that both "
                      "controllers mount")
    if not site.dbd_hosts:
        yield Problem(file=source, field=f"group {m.GROUP_DBD}", message="no slurmdbd host: accounting (which "
                      "QoS, limits and UCloud need) goes through slurmdbd", fix=f"put a host in group {m.GROUP_DBD}")
    elif len(site.dbd_hosts) > 2:
        yield Problem(file=source, field=f"group {m.GROUP_DBD}",
                      message=f"{len(site.dbd_hosts)} slurmdbd hosts; slurmdbd runs one primary and one backup",
                      fix=f"keep one or two hosts in group {m.GROUP_DBD}")
    elif len(site.dbd_hosts) > 1 and "bitten_slurm" not in declared["invalid"] \
            and site.slurm.database.host in ("localhost", "127.0.0.1", "::1"):
        yield Problem(file=source, field="bitten_slurm.database.host",
                      message="two slurmdbd hosts with a database on localhost would keep two separate accounting "
                      "databases", fix="point database.host at the shared (replicated) database server")
    if not site.compute_nodes:
        yield Problem(file=source, field=f"group {m.GROUP_COMPUTE}", message="no compute nodes",
                      fix=f"put nodes in {m.GROUP_GPU} or {m.GROUP_CPU} (children of {m.GROUP_COMPUTE})")

def check_partitions(site: m.Site, locator: Locator, declared: Declared) -> Iterator[Problem]:
    var = "bitten_partitions"
    qos_names = declared["qos"]
    in_partition: set[str] = set()
    names: set[str] = set()
    defaults = [p.name for p in site.partitions if p.default]
    if len(defaults) > 1:
        yield Problem(file=locator.find(None, var), field=var, message=f"several default partitions: "
                      f"{', '.join(defaults)}", fix="mark at most one partition default: true")
    for index, part in enumerate(site.partitions):
        where = locator.find(None, var, [index])
        field = f"{var}[{index}] ({part.name})"
        if part.name in names:
            yield Problem(file=where, field=field, message="partition defined twice", fix="rename or merge them")
        names.add(part.name)
        for group in part.groups:
            if group not in site.groups:
                yield Problem(file=locator.find(None, var, [index, "groups"]), field=f"{field}.groups",
                              message=f"group {group!r} is not in the inventory",
                              fix="name an inventory group such as gpu_nodes or cpu_nodes")
        members = site.partition_nodes(part)
        in_partition.update(members)
        if not members and all(g in site.groups for g in part.groups):
            yield Problem(file=where, field=f"{field}.groups", message="partition has no nodes",
                          fix="add hosts to its groups or remove the partition")
        for qos in part.qos:
            if qos not in qos_names:
                yield Problem(file=locator.find(None, var, [index, "qos"]), field=f"{field}.qos",
                              message=f"QoS {qos!r} is not defined", fix="define it in bitten_qos")
        if part.gpu:
            for host in members:
                profile = site.profile_of(host)
                if profile is not None and profile.gpu is None:
                    yield Problem(file=locator.find(host, "bitten_hardware_profile"), host=host,
                                  field=f"{field}.groups",
                                  message=f"GPU partition {part.name} contains {host}, whose hardware profile "
                                  f"{site.nodes[host].hardware_profile} has no GPUs",
                                  fix="move the node to a CPU partition or give its profile a gpu section")
        yield from _memory_overrides(site, locator, part, index, members)
    # groups that a partition names, valid or not: a node of an invalid partition is not "in no partition"
    listed = declared["partition_groups"]
    for host in site.compute_nodes:
        if host not in in_partition and not listed & set(site.nodes[host].groups):
            yield Problem(file=locator.find(host, "bitten_ip"), host=host, field="partition",
                          message="compute node is in no partition",
                          fix="add one of its groups to a partition's groups in bitten_partitions")

def _memory_overrides(site: m.Site, locator: Locator, part: m.Partition, index: int,
                      members: list[str]) -> Iterator[Problem]:
    """A partition's DefMemPerGPU/DefMemPerCPU override must let a default job use a whole node of it."""
    field = f"bitten_partitions[{index}] ({part.name})"
    for key, size, unit in (("def_mem_per_gpu", part.def_mem_per_gpu, "GPU"),
                            ("def_mem_per_cpu", part.def_mem_per_cpu, "CPU")):
        if size is None:
            continue
        per = memory_mib(size)
        where = locator.find(None, "bitten_partitions", [index, key])
        sized = []
        for host in members:
            profile = site.profile_of(host)
            if profile is None or (unit == "GPU" and profile.gpu is None):
                continue
            sized.append((host, profile, profile.gpu.count if profile.gpu and unit == "GPU" else profile.cpu.threads))
        if not sized and members:
            yield Problem(file=where, field=f"{field}.{key}", message=f"the partition has no GPU nodes, so "
                          f"{key} would never apply", fix=f"remove {key} from partition {part.name}")
        for host, profile, count in sized:
            if per * count > profile.memory_mb:
                yield Problem(file=where, host=host, field=f"{field}.{key}",
                              message=f"{per} MiB per {unit} x {count} {unit}s is more than the memory of {host} "
                              f"({profile.memory_mb} MiB, profile {site.nodes[host].hardware_profile}): a job "
                              f"on all of its {unit}s without --mem could never start",
                              fix=f"at most {profile.memory_mb // count} (memory_mb / {unit}s, MiB), or leave "
                              f"{key} out to get that share")
                break


def _twice(items: Sequence[m.Qos | m.Account], var: str, what: str, locator: Locator) -> Iterator[Problem]:
    """Names given twice; sacctmgr stores QoS and account names lower-case, so Gpu and gpu are one."""
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        key = item.name.lower()
        if key in first:
            other = items[first[key]].name
            yield Problem(file=locator.find(None, var, [index]), field=f"{var}[{index}] ({item.name})",
                          message=f"{what} {item.name!r} is defined twice (also {var}[{first[key]}]"
                          + (f", {other!r}: sacctmgr folds names to lower case" if other != item.name else "") + ")",
                          fix="keep one definition, or rename one")
        else:
            first[key] = index


def check_qos(site: m.Site, locator: Locator, declared: Declared) -> Iterator[Problem]:
    yield from _twice(site.qos, "bitten_qos", "QoS", locator)


def check_accounts(site: m.Site, locator: Locator, declared: Declared) -> Iterator[Problem]:
    yield from _twice(site.accounts, "bitten_accounts", "account", locator)
    by_name = {a.name: a for a in site.accounts}
    for index, account in enumerate(site.accounts):
        seen = [account.name]
        parent = by_name.get(account.parent)
        while parent is not None and parent.name not in seen:
            seen.append(parent.name)
            parent = by_name.get(parent.parent)
        if parent is not None and parent.name == account.name:
            yield Problem(file=locator.find(None, "bitten_accounts", [index, "parent"]),
                          field=f"bitten_accounts[{index}] ({account.name}).parent",
                          message="accounts form a cycle: " + " -> ".join([*seen, account.name]),
                          fix="make one of them a child of root or of another account")
    qos_names = declared["qos"]
    for index, account in enumerate(site.accounts):
        for qos in [*account.qos, *([account.default_qos] if account.default_qos else [])]:
            if qos not in qos_names:
                yield Problem(file=locator.find(None, "bitten_accounts", [index]),
                              field=f"bitten_accounts[{index}] ({account.name}).qos",
                              message=f"QoS {qos!r} is not defined", fix="define it in bitten_qos")
