"""Cross-checks of the cooling capability: loops, CDUs, meters, register maps and the ledger agree."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from bitten.cooling.config import clear_text_credentials
from bitten.site import model as m
from bitten.site.locate import Declared, Locator
from bitten.site.problems import Problem


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
        if clear_text_credentials(cdu):
            yield Problem(file=where("cdus", name, "url"), field=f"{var}.cdus.{name}.url",
                          message="http would send the CDU's credentials in clear text",
                          fix="use an https URL and give the CDU's CA as ca_file (plain http only without an "
                          "account, auth: none, or to a simulator on loopback)")
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
    power_off = [name for name, loop in sorted(cooling.loops.items()) if any(
        loop.action(kind).power_off for kind in m.ALARM_KINDS)]
    for name in power_off:
        for host in site.loop_nodes(name):
            if site.nodes[host].bmc is None:
                yield Problem(file=locator.find(host, "bitten_bmc"), host=host, field="bitten_bmc",
                              message=f"loop {name} powers its nodes off on a critical leak, but {host} has no BMC",
                              fix="give the node bitten_bmc, or set power_off: false for the loop's leak")
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
