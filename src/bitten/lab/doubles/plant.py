"""Assemble the simulated plant from an agent configuration: the CDU simulator for the CDUs on this host and port,
the Modbus meters whose host and port it serves, and a load that drives them. Used by `bitten cooling simulate`
(the lab's cooling-plant service and the Molecule scenario's plant container)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bitten.cooling.config import AgentConfig
from bitten.core.pki import server_tls
from bitten.lab.doubles.cdu import CduSimulator, ConstantLoad, Plant, SineLoad, SlurmLoad, serve_cdus
from bitten.lab.doubles.modbus import ModbusSim
from bitten.lab.httpserve import Server
from bitten.site.model import UNITS

log = logging.getLogger("bitten.lab.doubles.plant")

#: rough peak power of a node for the simulated load: per GPU (B200 class incl. its share of the host) and base
PEAK_KW_PER_GPU = 1.8
PEAK_KW_BASE = 1.2


def parse_load(spec: str, cfg: AgentConfig) -> Any:
    """constant:KW, sine:BASE:AMPLITUDE[:PERIOD_S], or slurm:CONTAINER (node states of the lab's controller)."""
    kind, _, rest = spec.partition(":")
    args = rest.split(":") if rest else []
    if kind == "constant" and len(args) == 1:
        return ConstantLoad(float(args[0]))
    if kind == "sine" and len(args) in (2, 3):
        return SineLoad(float(args[0]), float(args[1]), float(args[2]) if len(args) == 3 else 600.0)
    if kind == "slurm" and len(args) == 1:
        peaks = {n.name: PEAK_KW_BASE + n.gpus * PEAK_KW_PER_GPU for loop in cfg.loops.values() for n in loop.nodes}
        return SlurmLoad(args[0], peaks)
    raise ValueError(f"--load {spec!r}: expected constant:KW, sine:BASE:AMPLITUDE[:PERIOD_S] or slurm:CONTAINER")


@dataclass
class SimulatedPlant:
    cdu_server: Server | None = None
    modbus: ModbusSim | None = None
    cdu_sim: CduSimulator | None = None
    ca_file: Path | None = None
    roles: dict[int, str] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)


def _set(sim: ModbusSim, unit: int, name: str, canonical: float) -> None:
    reg = sim.units[unit].registers[name]
    sim.set(unit, name, canonical / UNITS[reg.unit][1])


def build_plant(cfg: AgentConfig, load: Any, *, bind: str, cdu_port: int, modbus_port: int,
                tls_dir: Path | None = None, advertised_host: str | None = None) -> SimulatedPlant:
    """Serve the CDUs and meters of ``cfg`` that live on ``advertised_host`` (default: bind) at the given ports."""
    host = advertised_host or bind
    out = SimulatedPlant()
    cdus = {name: c for name, c in cfg.cdus.items()
            if urlsplit(c.url).hostname == host and (urlsplit(c.url).port or 443) == cdu_port}
    if cdus:
        count = max(int(c.cdu_id) if c.cdu_id.isdigit() else 1 for c in cdus.values())
        coolant = next((cfg.coolants[c.coolant] for c in cdus.values() if c.coolant), None)
        plants = [Plant(load, coolant_type=coolant.type if coolant else "Water",
                        additive_percent=coolant.additive_percent if coolant else 0.0) for _ in range(count)]
        first = next(iter(cdus.values()))
        user = first.username if first.auth != "none" else None
        out.cdu_sim = CduSimulator(plants, username=user, password=first.password if user else None)
        certfile = keyfile = None
        if any(c.url.startswith("https") for c in cdus.values()):
            if tls_dir is None:
                raise ValueError("an https CDU needs --tls-dir (its CA is written there for the agent host)")
            tls = server_tls(tls_dir, [host, bind] if host != bind else [host], ca_name="bitten lab CA (CDUs)")
            out.ca_file = tls.ca
            certfile, keyfile = str(tls.cert), str(tls.key)
        out.cdu_server = serve_cdus(out.cdu_sim, bind, cdu_port, certfile=certfile, keyfile=keyfile)
    devices = {name: d for name, d in cfg.modbus.items() if d.host == host and d.port == modbus_port}
    if devices:
        units = {d.unit: cfg.register_maps[d.register_map] for d in devices.values()}
        it = {s.device for s in cfg.ledger.it_energy}
        facility = {s.device for s in cfg.ledger.facility_energy}
        for name, d in devices.items():
            out.roles[d.unit] = "heat" if d.role == "heat_meter" else (
                "it" if name in it else "facility" if name in facility else "idle")
        out.modbus = ModbusSim(units, bind, modbus_port)
    return out


def update_meters(plant: SimulatedPlant, source: Plant) -> None:
    """Write the plant's state into the meters' registers, by what each register measures."""
    sim = plant.modbus
    if sim is None:
        return
    s = source.advance()
    for unit, role in plant.roles.items():
        rmap = sim.units[unit]
        for name in rmap.registers:
            q = rmap.quantity_of(name)
            value: float | None = None
            if role == "heat":
                value = {"supply_temperature": s.facility_return_c, "return_temperature": s.facility_supply_c,
                         "flow": s.facility_flow_lpm, "heat_power": s.heat_facility_kw,
                         "heat_energy": s.heat_kwh}.get(q or "")
            elif role in ("it", "facility"):
                power, energy = (s.it_kw, s.it_kwh) if role == "it" else (s.facility_kw, s.facility_kwh)
                value = {"electric_power": power, "electric_energy": energy}.get(q or "")
            if value is not None:
                _set(sim, unit, name, value)


def run_plant(plant: SimulatedPlant, load: Any, period_s: float = 1.0) -> None:
    """Serve until plant.stop is set; the meters follow the first CDU's plant (or a plant of their own)."""
    from bitten.lab.httpserve import in_thread

    if plant.cdu_server is not None:
        in_thread(plant.cdu_server)
    if plant.modbus is not None:
        plant.modbus.start()
    source = plant.cdu_sim.plants[0] if plant.cdu_sim else Plant(load)
    try:
        while not plant.stop.is_set():
            try:
                update_meters(plant, source)
            except Exception:
                log.exception("updating the simulated meters")
            plant.stop.wait(period_s)
    finally:
        if plant.cdu_server is not None:
            plant.cdu_server.shutdown()
        if plant.modbus is not None:
            plant.modbus.stop()
