"""The district-heating side: the heat-reuse controller's demand and requested supply temperature over Modbus.

The register map is configuration (bitten_cooling.register_maps, read by bitten.cooling.modbus exactly as the
cooling agent reads its meters): which registers hold the demand and the requested temperature is named in
bitten_energy.signals.heat. A value the map declares invalid (an ECL's 192 degC open sensor), a value outside the
plausible range, a device that does not answer, or a last good reading older than ``max_age_s``: no value, a
status and a reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bitten.cooling.modbus import DeviceError, ModbusMeter
from bitten.energy.signals import Reading, SignalHealth
from bitten.site.model import HeatSignals, ModbusDevice, RegisterMap

#: plausible ranges in canonical units (kW, degC)
PLAUSIBLE = {"heat_demand": (0.0, 100000.0), "requested_supply_temperature": (20.0, 130.0)}
UNITS = {"heat_demand": "kW", "requested_supply_temperature": "degC"}


class HeatNetwork:
    def __init__(self, cfg: HeatSignals, device: ModbusDevice, rmap: RegisterMap, *,
                 health: SignalHealth | None = None, meter: ModbusMeter | None = None,
                 clock: Callable[[], float] = time.time, timeout: float = 3.0) -> None:
        self.cfg = cfg
        self.meter = meter or ModbusMeter(cfg.device, device, rmap, timeout=timeout)
        self.health = health or SignalHealth()
        self.clock = clock
        self.registers = {name: reg for name, reg in (
            ("heat_demand", cfg.demand_register),
            ("requested_supply_temperature", cfg.requested_supply_temperature_register)) if reg is not None}
        self.last_good: dict[str, Reading] = {}
        self.last_error = ""

    def readings(self) -> dict[str, Reading]:
        now = self.clock()
        source = f"modbus:{self.cfg.device}"
        out: dict[str, Reading] = {}
        try:
            reading = self.meter.read()
        except (DeviceError, OSError) as exc:
            self.last_error = str(exc)
            self.health.request(source, ok=False, error=self.last_error, now=now)
            for signal in self.registers:
                out[signal] = self._old_or(signal, now, "down", self.last_error)
            self.health.record(out.values())
            return out
        self.health.request(source, ok=True, now=now)
        for signal, register in self.registers.items():
            point = reading.points.get(register)
            where = f"{source}/{register}"
            low, high = PLAUSIBLE[signal]
            if point is None or point.value is None:
                out[signal] = self._old_or(signal, now, "missing", f"{where}: no valid reading (open sensor or "
                                           "a value the map declares invalid)")
            elif not low <= point.value <= high:
                out[signal] = self._old_or(signal, now, "garbage", f"{where}: {point.value:g} {point.unit} is "
                                           f"outside the plausible range [{low:g}, {high:g}]")
            else:
                good = Reading(signal, "ok", point.value, reading.timestamp, UNITS[signal], where)
                self.last_good[signal] = good
                out[signal] = good
        self.health.record(out.values())
        return out

    def _old_or(self, signal: str, now: float, status: str, reason: str) -> Reading:
        """The last good value while it is younger than max_age_s (labelled), else the failure."""
        old = self.last_good.get(signal)
        if old is not None and old.at is not None and now - old.at <= self.cfg.max_age_s:
            return Reading(signal, "fallback", old.value, old.at, old.unit, old.source,
                           reason=f"last good value from {now - old.at:.0f} s ago; now {status}: {reason}")
        if old is not None and old.at is not None:
            reason += f"; last good value is {now - old.at:.0f} s old (max_age_s {self.cfg.max_age_s:g})"
            status = "stale" if status == "down" else status
        return Reading(signal, status, unit=UNITS[signal], source=f"modbus:{self.cfg.device}",  # type: ignore[arg-type]
                       reason=reason)

    def close(self) -> None:
        self.meter.close()
