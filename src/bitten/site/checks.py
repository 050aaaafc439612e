"""Cross-checks: things each value gets right alone but the site gets wrong as a whole."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator

from bitten.site import model as m
from bitten.site.build import Locator
from bitten.site.problems import Problem

Declared = dict[str, set[str]]


def cross_check(site: m.Site, locator: Locator, declared: Declared) -> list[Problem]:
    """Run every check; ``declared`` holds the names each section declares, valid or not."""
    problems: list[Problem] = []
    for check in CHECKS:
        problems.extend(check(site, locator, declared))
    return problems


def _duplicates(site: m.Site, locator: Locator, what: str, var: str,
                key: Callable[[m.Node], object | None]) -> Iterator[Problem]:
    owners: dict[object, list[str]] = defaultdict(list)
    for node in site.nodes.values():
        value = key(node)
        if value is not None:
            owners[value].append(node.name)
    for value, hosts in owners.items():
        if len(hosts) > 1:
            shown = value if not isinstance(value, tuple) else "/".join(str(v) for v in value)
            for host in hosts:
                others = ", ".join(h for h in hosts if h != host)
                yield Problem(file=locator.find(host, var), host=host, field=var,
                              message=f"{what} {shown} is also used by {others}",
                              fix=f"give every host its own {what}")


def check_unique(site: m.Site, locator: Locator, declared: Declared) -> Iterator[Problem]:
    yield from _duplicates(site, locator, "IP address", "bitten_ip", lambda n: n.ip)
    yield from _duplicates(site, locator, "boot MAC", "bitten_boot_mac", lambda n: n.boot_mac)
    yield from _duplicates(site, locator, "BMC", "bitten_bmc", lambda n: n.bmc.key if n.bmc else None)


def check_bmcs(site: m.Site, locator: Locator, declared: Declared) -> Iterator[Problem]:
    """BMC credentials never cross the network in clear text (plain http only to an emulator on loopback)."""
    for node in site.nodes.values():
        bmc = node.bmc
        if bmc is None or bmc.scheme != "http":
            continue
        host = bmc.address.rsplit(":", 1)[0].strip("[]") if bmc.address.count(":") <= 1 else bmc.address
        if host in ("localhost", "127.0.0.1", "::1"):
            continue
        yield Problem(file=locator.find(node.name, "bitten_bmc", ["scheme"]), host=node.name,
                      field="bitten_bmc.scheme", message="http would send the BMC credentials in clear text",
                      fix="use scheme: https (iLO serves Redfish over https) and give the BMC CA to bitten")


def check_profiles(site: m.Site, locator: Locator, declared: Declared) -> Iterator[Problem]:
    known = ", ".join(sorted(declared["profiles"])) or "none defined"
    compute = set(site.compute_nodes)
    for node in site.nodes.values():
        name = node.hardware_profile
        if name is None:
            if node.name in compute:
                yield Problem(file=locator.find(node.name, "bitten_ip"), host=node.name,
                              field="bitten_hardware_profile", message="compute node without a hardware profile",
                              fix=f"set bitten_hardware_profile for its group; defined profiles: {known}")
        elif name not in declared["profiles"]:
            yield Problem(file=locator.find(node.name, "bitten_hardware_profile"), host=node.name,
                          field="bitten_hardware_profile", message=f"unknown hardware profile {name!r}",
                          fix=f"use one of: {known}, or define it in bitten_hardware_profiles")


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


def check_cooling(site: m.Site, locator: Locator, declared: Declared) -> Iterator[Problem]:
    cooling = site.cooling
    var = "bitten_cooling"

    def where(*path: str | int) -> str:
        return locator.find(None, var, list(path))

    for node in site.nodes.values():
        if node.cooling_loop and node.cooling_loop not in declared["loops"]:
            yield Problem(file=locator.find(node.name, "bitten_cooling_loop"), host=node.name,
                          field="bitten_cooling_loop", message=f"cooling loop {node.cooling_loop!r} is not defined",
                          fix="define it under bitten_cooling.loops or correct the name; defined: "
                          + (", ".join(sorted(declared["loops"])) or "none"))
    for name, loop in sorted(cooling.loops.items()):
        if loop.cdu not in declared["cdus"]:
            yield Problem(file=where("loops", name, "cdu"), field=f"{var}.loops.{name}.cdu",
                          message=f"CDU {loop.cdu!r} is not defined",
                          fix="define it under bitten_cooling.cdus; defined: " + (", ".join(sorted(declared["cdus"]))
                                                                                   or "none"))
        if loop.heat_meter and loop.heat_meter not in declared["heat_meters"]:
            yield Problem(file=where("loops", name, "heat_meter"), field=f"{var}.loops.{name}.heat_meter",
                          message=f"heat meter {loop.heat_meter!r} is not defined",
                          fix="define it under bitten_cooling.heat_meters")
    for name, cdu in sorted(cooling.cdus.items()):
        if cdu.coolant and cdu.coolant not in declared["coolants"]:
            yield Problem(file=where("cdus", name, "coolant"),
                          field=f"{var}.cdus.{name}.coolant", message=f"coolant {cdu.coolant!r} is not defined",
                          fix="define it under bitten_cooling.coolants")
    for section in ("heat_meters", "meters"):
        for name, meter in sorted(getattr(cooling, section).items()):
            if meter.register_map not in declared["register_maps"]:
                yield Problem(file=where(section, name, "register_map"),
                              field=f"{var}.{section}.{name}.register_map",
                              message=f"register map {meter.register_map!r} is not defined",
                              fix="define it under bitten_cooling.register_maps")
    for name in sorted(declared["heat_meters"] & declared["meters"]):
        yield Problem(file=where("meters", name), field=f"{var}.meters.{name}",
                      message="the same name is also a heat meter", fix="give every Modbus device its own name")
    yield from _check_ledger(site, where, declared)
    for index, host in enumerate(cooling.agent.hosts):
        if host not in site.nodes:
            yield Problem(file=where("agent", "hosts", index), field=f"{var}.agent.hosts[{index}]",
                          message=f"host {host!r} is not in the inventory", fix="name a host of the inventory")
    if (cooling.cdus or cooling.heat_meters or cooling.meters) and not site.cooling_agent_hosts \
            and site.controllers:
        yield Problem(file=where("agent"), field=f"{var}.agent.hosts", message="no host runs the cooling agent",
                      fix="list the agent's host under bitten_cooling.agent.hosts")


def _check_ledger(site: m.Site, where: Callable[..., str], declared: Declared) -> Iterator[Problem]:
    cooling = site.cooling
    devices = cooling.modbus_devices()
    for channel, sources in cooling.ledger.channels().items():
        wanted = m.LEDGER_CHANNELS[channel]
        for index, source in enumerate(sources):
            field = f"bitten_cooling.ledger.{channel}[{index}]"
            here = where("ledger", channel, index)
            if source.cdu is not None:
                if source.cdu not in declared["cdus"]:
                    yield Problem(file=here, field=f"{field}.cdu", message=f"CDU {source.cdu!r} is not defined",
                                  fix="define it under bitten_cooling.cdus")
                elif "heat_power" not in wanted:
                    yield Problem(file=here, field=field, message=f"a CDU measures heat, not {channel}",
                                  fix=f"feed {channel} from a Modbus meter register measuring {' or '.join(wanted)}")
                continue
            assert source.device is not None and source.register_name is not None
            device = devices.get(source.device)
            if device is None:
                if source.device not in declared["heat_meters"] | declared["meters"]:
                    yield Problem(file=here, field=f"{field}.device",
                                  message=f"Modbus device {source.device!r} is not defined",
                                  fix="define it under bitten_cooling.heat_meters or bitten_cooling.meters")
                continue
            rmap = cooling.register_maps.get(device.register_map)
            if rmap is None:
                continue
            if source.register_name not in rmap.registers:
                yield Problem(file=here, field=f"{field}.register",
                              message=f"register map {device.register_map} has no register {source.register_name!r}",
                              fix="name one of: " + ", ".join(sorted(rmap.registers)))
                continue
            quantity = rmap.quantity_of(source.register_name)
            if quantity not in wanted:
                yield Problem(file=here, field=f"{field}.register",
                              message=f"register {source.register_name} measures {quantity or 'an unknown quantity'}, "
                              f"but {channel} needs {' or '.join(wanted)}",
                              fix="pick another register, or set its quantity in the register map")


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
    from bitten.ucloud import imconfig

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


def check_provision(site: m.Site, locator: Locator, declared: Declared) -> Iterator[Problem]:
    """bitten_provision against the nodes, profiles and the provisioners group (bitten.provision.checks)."""
    from bitten.provision.checks import check_provision as check

    yield from check(site, locator, declared)


CHECKS: tuple[Callable[[m.Site, Locator, Declared], Iterable[Problem]], ...] = (
    check_unique, check_bmcs, check_profiles, check_slurm_roles, check_partitions, check_accounts, check_cooling,
    check_ucloud, check_provision,
)
