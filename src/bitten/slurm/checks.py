"""Cross-checks of the Slurm capability: controller and accounting hosts, partitions, accounts."""

from __future__ import annotations

from collections.abc import Iterator

from bitten.site import model as m
from bitten.site.locate import Declared, Locator
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
    if not site.dbd_hosts:
        yield Problem(file=source, field=f"group {m.GROUP_DBD}", message="no slurmdbd host: accounting (which "
                      "QoS, limits and UCloud need) goes through slurmdbd", fix=f"put a host in group {m.GROUP_DBD}")
    elif len(site.dbd_hosts) > 2:
        yield Problem(file=source, field=f"group {m.GROUP_DBD}",
                      message=f"{len(site.dbd_hosts)} slurmdbd hosts; slurmdbd runs one primary and one backup",
                      fix=f"keep one or two hosts in group {m.GROUP_DBD}")
    elif len(site.dbd_hosts) > 1 and site.slurm.database.host in ("localhost", "127.0.0.1", "::1"):
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
    for host in site.compute_nodes:
        if host not in in_partition:
            yield Problem(file=locator.find(host, "bitten_ip"), host=host, field="partition",
                          message="compute node is in no partition",
                          fix="add one of its groups to a partition's groups in bitten_partitions")

def check_accounts(site: m.Site, locator: Locator, declared: Declared) -> Iterator[Problem]:
    qos_names = declared["qos"]
    for index, account in enumerate(site.accounts):
        for qos in [*account.qos, *([account.default_qos] if account.default_qos else [])]:
            if qos not in qos_names:
                yield Problem(file=locator.find(None, "bitten_accounts", [index]),
                              field=f"bitten_accounts[{index}] ({account.name}).qos",
                              message=f"QoS {qos!r} is not defined", fix="define it in bitten_qos")
