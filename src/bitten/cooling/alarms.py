"""From readings to alarms: what is wrong with a loop now, and when an alarm is raised or cleared.

Each alarm kind is evaluated only from inputs that were read and are valid, and has one of three verdicts:
**raised** (a valid input shows the fault, or the device reports it as a condition), **clear** (every input it
needs was read, is valid and shows no fault) or **unknown** (an input is missing, null, not a number, not finite or
implausible). Unknown keeps the kind's previous state: it neither raises nor clears an alarm and it resets the
count of clean polls, so nothing clears, and no node resumes, from readings the agent did not have. A kind that
stays unknown for ``sensor_lost_after_s`` raises its own alarm, ``sensor_lost``, with its own action.

An alarm is raised on the first poll that shows it and clears only after ``clear_polls`` consecutive clean polls,
so a flapping sensor does not drain and resume nodes in a loop. Alarm state is persisted by the agent
(``actions.StateStore``) so that a restart neither forgets an alarm nor raises it twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bitten.cooling.redfish import LEAK_STATES, CduReading, Connector
from bitten.site.model import LoopLimits

#: condition severities that raise an alarm
ALARMING = frozenset({"Warning", "Critical"})

__all__ = ["LEAK_STATES", "Alarm", "AlarmTracker", "Transition", "Verdict", "evaluate", "findings"]

State = Literal["raised", "clear", "unknown"]


@dataclass(frozen=True)
class Verdict:
    state: State
    #: what was seen (raised), or which input is unknown and why (unknown)
    detail: str = ""
    #: Critical or Warning for a raised alarm (a Critical leak may power nodes off)
    severity: str = ""


CLEAR = Verdict("clear")


def _conditions(reading: CduReading, kind: str) -> list[str]:
    return [f"{c.message_id.rsplit('.', 1)[-1]}: {c.message}" for c in reading.conditions
            if c.kind == kind and c.severity in ALARMING]


def _critical(reading: CduReading, kind: str) -> bool:
    return any(c.kind == kind and c.severity == "Critical" for c in reading.conditions)


def _leak(reading: CduReading) -> Verdict:
    leaking = [d for d in reading.leak_detectors if d.state in LEAK_STATES]
    conditions = _conditions(reading, "leak")
    if leaking or conditions:
        critical = any(d.state == "Critical" for d in leaking) or _critical(reading, "leak")
        detail = "leak detected by " + ", ".join(d.id for d in leaking) if leaking else "; ".join(conditions)
        return Verdict("raised", detail, "Critical" if critical else "Warning")
    if not reading.leak_detectors:
        return Verdict("unknown", "the CDU reports no leak detector")
    unknown = [reading.problems.get(f"leak.{d.id}", f"leak detector {d.id}: no state")
               for d in reading.leak_detectors if d.state is None]
    if unknown:
        return Verdict("unknown", "; ".join(unknown))
    return CLEAR


def _pumps(reading: CduReading, limits: LoopLimits) -> Verdict:
    failed = [p.id for p in reading.pumps if p.failed]
    tolerated = limits.tolerated_pump_failures
    if len(failed) > tolerated:
        return Verdict("raised", f"pump(s) {', '.join(failed)} failed ({tolerated} tolerated)", "Critical")
    if not reading.pumps:
        conditions = _conditions(reading, "pump_failed")
        if conditions:  # the CDU lists no pumps, but says one failed
            return Verdict("raised", "; ".join(conditions), "Critical")
        return Verdict("unknown", "the CDU lists no pump")
    unknown = [p for p in reading.pumps if not p.known]
    conditions = _conditions(reading, "pump_failed")
    if unknown and conditions:  # a pump's status is unreadable, and the CDU says a pump failed
        return Verdict("raised", "; ".join(conditions), "Critical")
    if len(failed) + len(unknown) > tolerated:
        return Verdict("unknown", "; ".join(reading.problems.get(f"pump.{p.id}", f"pump {p.id}: no status")
                                            for p in unknown))
    return CLEAR


def _rack(reading: CduReading) -> Connector | None:
    return reading.connector("secondary") or reading.connector("primary")


def _low_flow(reading: CduReading, limits: LoopLimits) -> Verdict:
    conditions = _conditions(reading, "low_flow")
    rack = _rack(reading)
    minimum = limits.min_flow_lpm
    if minimum is not None and rack is not None and rack.flow_lpm is not None and rack.flow_lpm < minimum:
        return Verdict("raised", f"flow {rack.flow_lpm:g} L/min below the minimum {minimum:g} L/min", "Critical")
    if conditions:
        return Verdict("raised", "; ".join(conditions), "Critical" if _critical(reading, "low_flow") else "Warning")
    if minimum is None:
        return CLEAR  # no limit configured: only the device's own conditions count, and there are none
    if rack is None:
        return Verdict("unknown", "the CDU reports no coolant connector")
    if rack.flow_lpm is None:
        return Verdict("unknown", reading.problems.get(f"{rack.side}.flow", f"{rack.side} flow not reported"))
    return CLEAR


def _hot(reading: CduReading, limits: LoopLimits) -> Verdict:
    conditions = _conditions(reading, "high_supply_temperature")
    rack = _rack(reading)
    hot = limits.max_supply_temperature_c
    if hot is not None and rack is not None and rack.supply_c is not None and rack.supply_c > hot:
        return Verdict("raised", f"supply {rack.supply_c:g} degC above the limit {hot:g} degC", "Critical")
    if conditions:
        return Verdict("raised", "; ".join(conditions),
                       "Critical" if _critical(reading, "high_supply_temperature") else "Warning")
    if hot is None:
        return CLEAR
    if rack is None:
        return Verdict("unknown", "the CDU reports no coolant connector")
    if rack.supply_c is None:
        return Verdict("unknown", reading.problems.get(f"{rack.side}.supply",
                                                       f"{rack.side} supply temperature not reported"))
    return CLEAR


def evaluate(reading: CduReading, limits: LoopLimits) -> dict[str, Verdict]:
    """The verdict of every reading kind (leak, pump_failed, low_flow, high_supply_temperature) on one reading."""
    return {"leak": _leak(reading), "pump_failed": _pumps(reading, limits), "low_flow": _low_flow(reading, limits),
            "high_supply_temperature": _hot(reading, limits)}


def findings(verdicts: dict[str, Verdict]) -> dict[str, str]:
    """The raised kinds and their details (for a one-off check of a device)."""
    return {kind: v.detail for kind, v in verdicts.items() if v.state == "raised"}


@dataclass
class Alarm:
    kind: str
    detail: str
    since: float
    clean_polls: int = 0
    severity: str = ""


@dataclass
class Transition:
    loop: str
    kind: str
    raised: bool
    detail: str


@dataclass
class AlarmTracker:
    clear_polls: int = 3
    #: seconds a kind may stay unknown before sensor_lost is raised
    sensor_lost_after_s: float = 60.0
    active: dict[str, dict[str, Alarm]] = field(default_factory=dict)
    #: loop -> kind -> (since when it is unknown, why)
    unknown: dict[str, dict[str, tuple[float, str]]] = field(default_factory=dict)

    def update(self, loop: str, verdicts: dict[str, Verdict], now: float) -> list[Transition]:
        """Feed one evaluation of a loop; kinds absent from ``verdicts`` were not evaluated and keep their state.

        sensor_lost follows from the unknown kinds: raised when one has been unknown for sensor_lost_after_s,
        clear when none is unknown, and otherwise unchanged.
        """
        unknown = self.unknown.setdefault(loop, {})
        for kind, verdict in verdicts.items():
            if verdict.state == "unknown":
                since, _ = unknown.get(kind, (now, ""))
                unknown[kind] = (since, verdict.detail)
            else:
                unknown.pop(kind, None)
        lost = {kind: why for kind, (since, why) in unknown.items() if now - since >= self.sensor_lost_after_s}
        if lost:
            verdicts = {**verdicts, "sensor_lost": Verdict("raised", "; ".join(
                f"{kind}: {why}" for kind, why in sorted(lost.items())) + " (unknown for "
                f"{max(now - unknown[k][0] for k in lost):.1f} s)", "Warning")}
        elif not unknown and any(v.state != "unknown" for v in verdicts.values()):
            verdicts = {**verdicts, "sensor_lost": CLEAR}
        elif unknown:
            verdicts = {**verdicts, "sensor_lost": Verdict("unknown", "inputs unknown, not yet for long")}
        return self._apply(loop, verdicts, now)

    def raise_only(self, loop: str, verdicts: dict[str, Verdict], now: float) -> list[Transition]:
        """Apply raised verdicts only (the agent's watch for a CDU whose read hangs): nothing is cleared or counted."""
        return self._apply(loop, {k: v for k, v in verdicts.items() if v.state == "raised"}, now)

    def _apply(self, loop: str, verdicts: dict[str, Verdict], now: float) -> list[Transition]:
        out: list[Transition] = []
        current = self.active.setdefault(loop, {})
        for kind, verdict in verdicts.items():
            alarm = current.get(kind)
            if verdict.state == "raised":
                if alarm is None:
                    current[kind] = Alarm(kind, verdict.detail, now, severity=verdict.severity)
                    out.append(Transition(loop, kind, True, verdict.detail))
                else:
                    alarm.clean_polls = 0
                    alarm.detail = verdict.detail
                    alarm.severity = verdict.severity
            elif alarm is None:
                continue
            elif verdict.state == "unknown":
                alarm.clean_polls = 0  # unknown is not clean: the alarm stays, and counting starts again
            else:
                alarm.clean_polls += 1
                if alarm.clean_polls >= self.clear_polls:
                    del current[kind]
                    out.append(Transition(loop, kind, False, alarm.detail))
        return out

    def kinds(self, loop: str) -> dict[str, Alarm]:
        return self.active.get(loop, {})

    def unknown_kinds(self, loop: str) -> dict[str, str]:
        """Kinds whose inputs are unknown now, and why."""
        return {kind: why for kind, (_, why) in self.unknown.get(loop, {}).items()}
