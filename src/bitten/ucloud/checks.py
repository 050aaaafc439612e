"""Cross-checks of the UCloud capability: machine types fit their partitions, and the IM accepts the config
bitten builds (its own rules, bitten.ucloud.im)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from bitten.site import model as m
from bitten.site.locate import Declared, Locator
from bitten.site.problems import Problem
from bitten.ucloud import imconfig


def check_ucloud(site: m.Site, locator: Locator, declared: Declared) -> Iterator[Problem]:
    if site.ucloud is None:
        return
    var = "bitten_ucloud"
    if not site.hosts_in(m.GROUP_UCLOUD):
        yield Problem(file=locator.find(None, var), field=f"group {m.GROUP_UCLOUD}",
                      message="UCloud is configured but no host is its frontend",
                      fix=f"put the login node that runs the Integration Module in group {m.GROUP_UCLOUD}")
    for name, machine in sorted(site.ucloud.machine_types.items()):
        field = f"{var}.machine_types.{name}"
        where = locator.find(None, var, ["machine_types", name])
        part = site.partition(machine.partition)
        if part is None and machine.partition in declared["partitions"]:
            continue
        if part is None:
            yield Problem(file=locator.find(None, var, ["machine_types", name, "partition"]),
                          field=f"{field}.partition", message=f"partition {machine.partition!r} does not exist",
                          fix="name a partition from bitten_partitions: "
                          + ", ".join(p.name for p in site.partitions))
            continue
        if machine.qos not in part.qos:
            yield Problem(file=locator.find(None, var, ["machine_types", name, "qos"]), field=f"{field}.qos",
                          message=f"QoS {machine.qos!r} is not allowed in partition {part.name}",
                          fix=f"add it to the partition's qos list ({', '.join(part.qos)})")
        weights = {k.lower() for k in part.billing_weights}
        needed = _BILLED_TRES[machine.payment.unit]
        if machine.payment.type == "Resource" and needed.lower() not in weights:
            yield Problem(file=locator.find(None, "bitten_partitions", [site.partitions.index(part)]),
                          field=f"bitten_partitions ({part.name}).billing_weights",
                          message=f"UCloud machine type {name} bills by {machine.payment.unit} but the partition's "
                          f"TRESBillingWeights has no {needed}", fix=f"add {needed}: 1.0 to its billing_weights")
        if machine.gpu is not None and not part.gpu:
            yield Problem(file=where, field=f"{field}.gpu", message=f"GPU machine type on partition {part.name}, "
                          "which is not a GPU partition", fix="point it at a partition with gpu: true")
        if machine.cpu is not None:
            yield from _fits(site, part, machine, where, field)
    yield from _im_rules(site, locator)

#: the TRES a partition must weigh for the IM's billing of each payment unit (UCloud IM docs, slurm.md)
_BILLED_TRES = {"Gpu": "GRES/gpu", "Cpu": "CPU", "Memory": "Mem"}

def _im_rules(site: m.Site, locator: Locator) -> Iterator[Problem]:
    """The IM's own rules, applied to the config.yml bitten builds (one implementation: bitten.ucloud.im)."""
    var = "bitten_ucloud"
    sizes, issues = imconfig.check(site)
    machines = site.ucloud.machine_types if site.ucloud else {}
    for size in sizes:
        if site.partition(machines[size.machine].partition) is None:
            continue  # reported as an unknown partition
        yield Problem(file=locator.find(None, var, ["machine_types", size.machine]),
                      field=f"{var}.machine_types.{size.machine}.{size.key}", message=size.message, fix=size.fix)
    for issue in issues:
        path = list(issue.path)
        if path[:3] == ["services", "slurm", "machines"] and len(path) > 3:
            keys = ["machine_types", path[3], *(imconfig.INVENTORY_KEYS.get(k, k) for k in path[4:])]
        elif path[:2] == ["services", "fileSystems"] and len(path) > 2:
            keys = ["file_systems", *path[2:]]
        else:
            keys = []
        yield Problem(file=locator.find(None, var, keys), field=".".join([var, *keys]),
                      message=f"the UCloud IM would refuse its config: {issue.message}" if issue.im_rule
                      else issue.message,
                      fix="correct the value in bitten_ucloud (see roles/ucloud_im/README.md)")

def _fits(site: m.Site, part: m.Partition, machine: m.MachineType, where: str, field: str) -> Iterable[Problem]:
    """Every product size must fit on a node of the partition."""
    profiles = {site.nodes[h].hardware_profile for h in site.partition_nodes(part) if h in site.nodes}
    known = [site.hardware_profiles[p] for p in profiles if p in site.hardware_profiles]
    if not known:
        return
    max_cpu = max(p.cpu.threads for p in known)
    max_mem_gb = max(p.memory_mb for p in known) // 1024
    max_gpu = max((p.gpu.count if p.gpu else 0) for p in known)
    assert machine.cpu is not None
    if max(machine.cpu) > max_cpu:
        yield Problem(file=where, field=f"{field}.cpu", message=f"{max(machine.cpu)} CPUs exceeds the largest "
                      f"node in partition {part.name} ({max_cpu})", fix="shrink the largest product")
    if machine.memory and max(machine.memory) > max_mem_gb:
        yield Problem(file=where, field=f"{field}.memory", message=f"{max(machine.memory)} GB exceeds the "
                      f"largest node in partition {part.name} ({max_mem_gb} GB)", fix="shrink the largest product")
    if machine.gpu and max(machine.gpu) > max_gpu:
        yield Problem(file=where, field=f"{field}.gpu", message=f"{max(machine.gpu)} GPUs exceeds the "
                      f"largest node in partition {part.name} ({max_gpu})", fix="shrink the largest product")
