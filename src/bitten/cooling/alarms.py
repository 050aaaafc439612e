"""From readings to alarms: what is wrong with a loop now, and when an alarm is raised or cleared.

An alarm is raised on the first poll that shows it and clears only after ``clear_polls`` consecutive polls without
it, so a flapping sensor does not drain and resume nodes in a loop. Alarm state is persisted by the agent
(``actions.StateStore``) so that a restart neither forgets an alarm nor raises it twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bitten.cooling.redfish import CduReading
from bitten.site.model import LoopLimits

#: leak detector states that mean a leak (Redfish Health values; OK and Absent do not)
LEAK_STATES = frozenset({"Warning", "Critical"})


def evaluate(reading: CduReading, limits: LoopLimits) -> dict[str, str]:
    """Alarm kind -> detail for everything wrong in one CDU reading (the "stale" kind is the agent's)."""
    found: dict[str, str] = {}
    leaks = [d.id for d in reading.leak_detectors if d.state in LEAK_STATES]
    if leaks:
        found["leak"] = "leak detected by " + ", ".join(leaks)
    failed = [p.id for p in reading.pumps if p.failed]
    if len(failed) > limits.tolerated_pump_failures:
        found["pump_failed"] = f"pump(s) {', '.join(failed)} failed ({limits.tolerated_pump_failures} tolerated)"
    rack = reading.connector("secondary") or reading.connector("primary")
    if rack is not None:
        if limits.min_flow_lpm is not None and rack.flow_lpm is not None and rack.flow_lpm < limits.min_flow_lpm:
            found["low_flow"] = f"flow {rack.flow_lpm:g} L/min below the minimum {limits.min_flow_lpm:g} L/min"
        hot = limits.max_supply_temperature_c
        if hot is not None and rack.supply_c is not None and rack.supply_c > hot:
            found["high_supply_temperature"] = f"supply {rack.supply_c:g} degC above the limit {hot:g} degC"
    for cond in reading.conditions:
        kind = cond.kind
        if kind is None or cond.severity not in ("Warning", "Critical") or kind in found:
            continue
        if kind == "pump_failed" and reading.pumps:
            continue  # the pumps themselves were counted against the tolerated failures
        found[kind] = f"{cond.message_id.rsplit('.', 1)[-1]}: {cond.message}"
    return found


@dataclass
class Alarm:
    kind: str
    detail: str
    since: float
    clean_polls: int = 0


@dataclass
class Transition:
    loop: str
    kind: str
    raised: bool
    detail: str


@dataclass
class AlarmTracker:
    clear_polls: int = 3
    active: dict[str, dict[str, Alarm]] = field(default_factory=dict)

    def update(self, loop: str, findings: dict[str, str], now: float,
               evaluated: frozenset[str] | None = None) -> list[Transition]:
        """Feed one evaluation of a loop; ``evaluated`` limits clearing to the kinds this evaluation could see."""
        out: list[Transition] = []
        current = self.active.setdefault(loop, {})
        for kind, detail in findings.items():
            alarm = current.get(kind)
            if alarm is None:
                current[kind] = Alarm(kind, detail, now)
                out.append(Transition(loop, kind, True, detail))
            else:
                alarm.clean_polls = 0
                alarm.detail = detail
        for kind in list(current):
            if kind in findings or (evaluated is not None and kind not in evaluated):
                continue
            alarm = current[kind]
            alarm.clean_polls += 1
            if alarm.clean_polls >= self.clear_polls:
                del current[kind]
                out.append(Transition(loop, kind, False, alarm.detail))
        return out

    def kinds(self, loop: str) -> dict[str, Alarm]:
        return self.active.get(loop, {})
