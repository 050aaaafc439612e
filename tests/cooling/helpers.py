"""Test helpers: register maps of the simulated meters and a complete agent configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bitten.cooling.config import AgentConfig, parse_config

HEAT_METER_MAP: dict[str, Any] = {"registers": {
    "supply_temperature": {"address": 0, "function": 4, "type": "int16", "scale": 0.01, "unit": "degC"},
    "return_temperature": {"address": 1, "function": 4, "type": "int16", "scale": 0.01, "unit": "degC"},
    "flow": {"address": 2, "function": 4, "type": "uint32", "scale": 0.001, "unit": "m3/h"},
    "heat_power": {"address": 4, "function": 4, "type": "uint32", "scale": 0.1, "unit": "kW"},
    "heat_energy": {"address": 6, "function": 4, "type": "uint32", "scale": 0.01, "unit": "kWh"},
}}
ELECTRICITY_MAP: dict[str, Any] = {"registers": {
    "power": {"address": 0, "function": 3, "type": "float32", "unit": "kW", "quantity": "electric_power"},
    "energy": {"address": 2, "function": 3, "type": "uint32", "scale": 0.01, "unit": "kWh",
               "quantity": "electric_energy"},
}}


def agent_config(tmp: Path, cdu_url: str, meter_port: int | None = None, **overrides: Any) -> AgentConfig:
    """A complete agent configuration against the test devices (what the template renders, in dict form)."""
    actions = {k: {"drain": k not in ("stale", "sensor_lost"), "cap_gpu_power_percent": None, "resume_on_clear": False}
               for k in ("leak", "pump_failed", "low_flow", "high_supply_temperature", "stale", "sensor_lost")}
    raw: dict[str, Any] = {
        "site": "test", "listen": "127.0.0.1", "port": 0, "poll_interval_s": 0.2, "stale_after_s": 1.0,
        "clear_polls": 2, "state_dir": str(tmp / "state"), "slurm_actions": True, "gpu_power_command": [],
        "coolants": {"pg25": {"type": "PropyleneGlycol", "additive_percent": 25}},
        "cdus": {"cdu-a": {"url": cdu_url, "cdu_id": "1", "coolant": "pg25", "username": "agent",
                           "password": "s3cret", "auth": "basic", "events": False}},
        "modbus": {},
        "register_maps": {"heat_meter": HEAT_METER_MAP, "electricity": ELECTRICITY_MAP},
        "loops": {"loop-a": {"cdu": "cdu-a", "limits": {"min_flow_lpm": 20, "max_supply_temperature_c": 40},
                             "actions": actions,
                             "nodes": [{"name": "gpu01", "gpus": 8, "gpu_max_power_watts": 1000},
                                       {"name": "gpu02", "gpus": 8, "gpu_max_power_watts": 1000}]}},
        "ledger": {"max_gap_s": 60},
    }
    if meter_port is not None:
        # the tests fast-forward the meters' counters (10 kWh between two polls a few ms apart): their maximum
        # power is set to match, so the counter-step check (a glitch is a gap) does not take them for glitches
        fast = {"max_power_kw": 1e9}
        raw["modbus"] = {
            "dh-meter": {"host": "127.0.0.1", "port": meter_port, "unit": 1, "register_map": "heat_meter",
                         "role": "heat_meter", **fast},
            "it-meter": {"host": "127.0.0.1", "port": meter_port, "unit": 2, "register_map": "electricity", **fast},
            "dc-meter": {"host": "127.0.0.1", "port": meter_port, "unit": 3, "register_map": "electricity", **fast}}
        raw["loops"]["loop-a"]["heat_meter"] = "dh-meter"
        raw["ledger"].update({
            "reused_heat": [{"device": "dh-meter", "register": "heat_energy"}],
            "it_energy": [{"device": "it-meter", "register": "energy"}],
            "facility_energy": [{"device": "dc-meter", "register": "energy"}],
            "waste_heat_temperature": [{"device": "dh-meter", "register": "supply_temperature"}]})
    for key, value in overrides.items():
        raw[key] = value
    return parse_config(raw)
