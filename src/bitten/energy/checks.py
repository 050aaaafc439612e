"""Cross-checks of bitten_energy against the rest of the site: every name a policy uses must exist, and every cap
must be one the GPUs accept.

Each check takes (site, locator, declared) like the site's own checks; ``declared`` holds the names each section
declares, valid or not, so that a section that failed its own validation does not cause a second, misleading
error here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from bitten.site import model as m
from bitten.site.locate import Locator
from bitten.site.problems import Problem

VAR = "bitten_energy"
Declared = dict[str, set[str]]


def _known(names: set[str] | list[str]) -> str:
    return ", ".join(sorted(names)) or "none defined"


def check_policies(site: m.Site, locator: Locator, declared: Declared) -> Iterator[Problem]:
    energy = site.energy

    def where(*path: str | int) -> str:
        return locator.find(None, VAR, list(path))

    for index, policy in enumerate(energy.policies):
        field = f"{VAR}.policies[{index}] ({policy.name})"
        for t_index, trigger in enumerate(policy.when):
            if trigger.signal in m.GRID_SIGNALS and energy.signals.grid is None:
                yield Problem(file=where("policies", index, "when", t_index), field=f"{field}.when[{t_index}]",
                              message=f"trigger on {trigger.signal} but no grid signal source is configured",
                              fix=f"add signals.grid (Energi Data Service) to {VAR}")
            if trigger.signal in m.HEAT_SIGNALS:
                heat = energy.signals.heat
                register = None if heat is None else (
                    heat.demand_register if trigger.signal == "heat_demand"
                    else heat.requested_supply_temperature_register)
                if register is None:
                    key = "demand_register" if trigger.signal == "heat_demand" else \
                        "requested_supply_temperature_register"
                    yield Problem(file=where("policies", index, "when", t_index), field=f"{field}.when[{t_index}]",
                                  message=f"trigger on {trigger.signal} but signals.heat names no register for it",
                                  fix=f"set signals.heat.{key} in {VAR}")
        action = policy.action
        here = where("policies", index, "action")
        if isinstance(action, m.GpuCapAction):
            yield from _check_cap(site, locator, declared, index, field, action)
        elif isinstance(action, m.HoldAction):
            if action.qos not in declared["qos"]:
                yield Problem(file=where("policies", index, "action", "qos"), field=f"{field}.action.qos",
                              message=f"QoS {action.qos!r} is not defined",
                              fix=f"name a QoS of bitten_qos ({_known(declared['qos'])})")
            elif action.qos not in energy.flexible_qos:
                yield Problem(file=where("policies", index, "action", "qos"), field=f"{field}.action.qos",
                              message=f"QoS {action.qos!r} is not flexible: only jobs that agreed to wait are held",
                              fix=f"add it to {VAR}.flexible_qos, or hold a flexible QoS")
        elif isinstance(action, m.CduSetpointAction):
            if action.cdu not in declared["cdus"]:
                yield Problem(file=where("policies", index, "action", "cdu"), field=f"{field}.action.cdu",
                              message=f"CDU {action.cdu!r} is not defined",
                              fix=f"name a CDU of bitten_cooling.cdus ({_known(declared['cdus'])})")
                continue
            for loop_name, loop in sorted(site.cooling.loops.items()):
                limit = loop.limits.max_supply_temperature_c
                if loop.cdu == action.cdu and limit is not None and action.supply_temperature_c >= limit:
                    yield Problem(file=where("policies", index, "action", "supply_temperature_c"),
                                  field=f"{field}.action.supply_temperature_c",
                                  message=f"{action.supply_temperature_c:g} degC is at or above loop {loop_name}'s "
                                  f"max_supply_temperature_c ({limit:g} degC): the cooling alarm would drain its "
                                  "nodes", fix=f"ask for less than {limit:g} degC")
        else:  # pragma: no cover - the discriminated union has no other member
            yield Problem(file=here, field=f"{field}.action", message="unknown action")


def _check_cap(site: m.Site, locator: Locator, declared: Declared, index: int, field: str,
               action: m.GpuCapAction) -> Iterator[Problem]:
    energy = site.energy
    watts_at = locator.find(None, VAR, ["policies", index, "action", "watts_per_gpu"])
    part = site.partition(action.partition)
    if part is None:
        if action.partition not in declared["partitions"]:
            yield Problem(file=locator.find(None, VAR, ["policies", index, "action", "partition"]),
                          field=f"{field}.action.partition", message=f"partition {action.partition!r} does not exist",
                          fix=f"name a partition of bitten_partitions ({_known(declared['partitions'])})")
        return
    profiles = sorted({p for h in site.partition_nodes(part) if (p := site.nodes[h].hardware_profile)})
    for name in profiles:
        profile = site.hardware_profiles.get(name)
        if profile is None:
            continue  # reported by the site's own profile check
        gpu = profile.gpu
        if gpu is None:
            yield Problem(file=locator.find(None, VAR, ["policies", index, "action", "partition"]),
                          field=f"{field}.action.partition", message=f"partition {part.name} has nodes of profile "
                          f"{name}, which has no GPUs to cap", fix="cap a GPU partition")
            continue
        if gpu.max_power_watts is None or gpu.min_power_watts is None:
            yield Problem(file=watts_at, field=f"{field}.action.watts_per_gpu",
                          message=f"the power range of profile {name}'s GPU ({gpu.model}) is unknown, so no cap can "
                          "be checked", fix=f"set gpu.min_power_watts and gpu.max_power_watts in "
                          f"bitten_hardware_profiles.{name} (nvidia-smi -q -d POWER: Min/Max Power Limit)")
            continue
        if not gpu.min_power_watts <= action.watts_per_gpu <= gpu.max_power_watts:
            yield Problem(file=watts_at, field=f"{field}.action.watts_per_gpu",
                          message=f"{action.watts_per_gpu} W is outside the {gpu.model}'s power limit range "
                          f"[{gpu.min_power_watts}, {gpu.max_power_watts}] W (profile {name})",
                          fix=f"cap between {gpu.min_power_watts} and {gpu.max_power_watts} W")
            continue
        floor = energy.cap_floor_watts.get(name)
        if floor is not None and action.watts_per_gpu < floor:
            yield Problem(file=watts_at, field=f"{field}.action.watts_per_gpu",
                          message=f"{action.watts_per_gpu} W is below the cap floor of profile {name} ({floor} W)",
                          fix=f"cap at {floor} W or more, or lower {VAR}.cap_floor_watts.{name}")


def check_settings(site: m.Site, locator: Locator, declared: Declared) -> Iterator[Problem]:
    energy = site.energy

    def where(*path: str | int) -> str:
        return locator.find(None, VAR, list(path))

    for index, qos in enumerate(energy.flexible_qos):
        if qos not in declared["qos"]:
            yield Problem(file=where("flexible_qos", index), field=f"{VAR}.flexible_qos[{index}]",
                          message=f"QoS {qos!r} is not defined", fix=f"define it in bitten_qos "
                          f"({_known(declared['qos'])})")
    for name, floor in sorted(energy.cap_floor_watts.items()):
        profile = site.hardware_profiles.get(name)
        if profile is None:
            if name not in declared["profiles"]:
                yield Problem(file=where("cap_floor_watts", name), field=f"{VAR}.cap_floor_watts.{name}",
                              message=f"hardware profile {name!r} is not defined",
                              fix=f"name a profile of bitten_hardware_profiles ({_known(declared['profiles'])})")
            continue
        gpu = profile.gpu
        if gpu is None:
            yield Problem(file=where("cap_floor_watts", name), field=f"{VAR}.cap_floor_watts.{name}",
                          message=f"profile {name} has no GPUs", fix="remove the floor")
        elif (gpu.min_power_watts is not None and floor < gpu.min_power_watts) or \
                (gpu.max_power_watts is not None and floor > gpu.max_power_watts):
            yield Problem(file=where("cap_floor_watts", name), field=f"{VAR}.cap_floor_watts.{name}",
                          message=f"floor {floor} W is outside the GPU's range [{gpu.min_power_watts}, "
                          f"{gpu.max_power_watts}] W", fix="choose a floor within the GPU's power limit range")
    heat = energy.signals.heat
    if heat is not None:
        yield from _check_heat(site, where, declared, heat)
    for name, plugin in sorted(energy.accounting.plugins.items()):
        if name not in declared["profiles"]:
            yield Problem(file=where("accounting", "plugins", name), field=f"{VAR}.accounting.plugins.{name}",
                          message=f"hardware profile {name!r} is not defined",
                          fix=f"name a profile of bitten_hardware_profiles ({_known(declared['profiles'])})")
        profile = site.hardware_profiles.get(name)
        if plugin == "gpu" and profile is not None and profile.gpu is None:
            yield Problem(file=where("accounting", "plugins", name), field=f"{VAR}.accounting.plugins.{name}",
                          message=f"acct_gather_energy/gpu reads GPUs through NVML, but profile {name} has none",
                          fix="use ipmi, rapl or none for this profile")
        elif plugin == "gpu" and site.slurm.gres_autodetect != "nvml":
            # slurmd's GPU plugin is the one gres.conf's AutoDetect names; without nvml it is gpu/generic, which
            # reads no energy: every job's ConsumedEnergy would be 0
            yield Problem(file=where("accounting", "plugins", name), field=f"{VAR}.accounting.plugins.{name}",
                          message=f"acct_gather_energy/gpu (profile {name}) reads energy through slurmd's NVML "
                          f"plugin, but bitten_slurm.gres_autodetect is {site.slurm.gres_autodetect}: slurmd "
                          "would load gpu/generic and account 0 J for every job",
                          fix="set bitten_slurm.gres_autodetect: nvml (the gpu role installs slurm-wlm-nvml-plugin "
                          "where the release can), or none here (bitten attributes GPU energy from its own series)")
    used = {p for p in energy.accounting.plugins.values() if p != "none"}
    if len(used) > 1:
        yield Problem(file=where("accounting", "plugins"), field=f"{VAR}.accounting.plugins",
                      message=f"profiles name different energy plugins ({', '.join(sorted(used))}), but slurm.conf "
                      "carries one AcctGatherEnergyType for every node",
                      fix="choose one plugin and set the other profiles to none (bitten attributes their energy "
                      "from its own series)")
    for name, pdu in sorted(energy.pdus.items()):
        for outlet, node in sorted(pdu.outlets.items()):
            if node not in site.nodes:
                yield Problem(file=where("pdus", name, "outlets", outlet), field=f"{VAR}.pdus.{name}.outlets.{outlet}",
                              message=f"host {node!r} is not in the inventory", fix="name the node the outlet feeds")
    for index, host in enumerate(energy.controller.hosts):
        if host not in site.nodes:
            yield Problem(file=where("controller", "hosts", index), field=f"{VAR}.controller.hosts[{index}]",
                          message=f"host {host!r} is not in the inventory", fix="name a host of the inventory")
    if (energy.policies or energy.signals.grid or heat) and not site.energy_controller_hosts and site.controllers:
        yield Problem(file=where("controller"), field=f"{VAR}.controller.hosts",
                      message="no host runs the energy controller", fix=f"list it under {VAR}.controller.hosts")


def _check_heat(site: m.Site, where: Callable[..., str], declared: Declared,
                heat: m.HeatSignals) -> Iterator[Problem]:
    devices = site.cooling.modbus_devices()
    device = devices.get(heat.device)
    field = f"{VAR}.signals.heat"
    if device is None:
        if heat.device not in declared["meters"] | declared["heat_meters"]:
            yield Problem(file=where("signals", "heat", "device"), field=f"{field}.device",
                          message=f"Modbus device {heat.device!r} is not defined",
                          fix="define the heat-reuse controller under bitten_cooling.meters "
                          f"({_known(declared['meters'] | declared['heat_meters'])})")
        return
    rmap = site.cooling.register_maps.get(device.register_map)
    if rmap is None:
        return  # reported by the cooling checks
    wanted = {"demand_register": ("heat_power",),
              "requested_supply_temperature_register": ("supply_temperature_setpoint", "supply_temperature")}
    for key, quantities in wanted.items():
        register = getattr(heat, key)
        if register is None:
            continue
        if register not in rmap.registers:
            yield Problem(file=where("signals", "heat", key), field=f"{field}.{key}",
                          message=f"register map {device.register_map} has no register {register!r}",
                          fix="name one of: " + ", ".join(sorted(rmap.registers)))
            continue
        quantity = rmap.quantity_of(register)
        if quantity not in quantities:
            yield Problem(file=where("signals", "heat", key), field=f"{field}.{key}",
                          message=f"register {register} measures {quantity or 'an unknown quantity'}, but {key} "
                          f"needs {' or '.join(quantities)}", fix="pick another register or set its quantity")


CHECKS = (check_policies, check_settings)
