"""Desired state (DesiredBmcState), observed state, and the plan between them — pure functions, no BMC traffic.

Rules (what a plan contains):
- BIOS: every desired attribute whose current value differs, unless the same value is already pending (then it
  is reported as pending, not as a change). Writes go to the BIOS ``@Redfish.Settings`` object and apply at the
  next reboot; an attribute the BIOS does not have is a problem, found before anything is written.
- One-time boot (Pxe, Cd with an ISO URL, Hdd) is part of bringing a node up: it is set when this run powers the
  node on or restarts it, and left alone on a node that is running and stays running (so a second run on a
  provisioned node changes nothing). ``target: None`` never touches boot.
- Power: On or Off as desired. A running node is restarted only with ``reboot`` and only when BIOS changes wait
  for a reboot; that restart goes through the one-time boot like any other power-on.
- The node's boot MAC from the inventory must be one of the MACs the BMC reports: otherwise the BMC address may
  belong to another node, and nothing is written.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bitten.site.model import Boot, Firmware, HardwareProfile

PowerState = Literal["On", "Off"]
Area = Literal["bios", "media", "boot", "power"]


@dataclass(frozen=True)
class DesiredBmcState:
    """What one node's BMC should hold, derived from its hardware profile."""

    bios: Mapping[str, str | int | bool] = field(default_factory=dict)
    boot: Boot = field(default_factory=Boot)
    power: PowerState = "On"
    #: the MAC the node PXE-boots from, as the inventory states it (checked against the BMC's report)
    boot_mac: str | None = None
    #: the firmware baseline (label -> component, version, image) and where its images are
    firmware: Mapping[str, Firmware] = field(default_factory=dict)
    firmware_repository: str | None = None

    @classmethod
    def from_profile(cls, profile: HardwareProfile, boot_mac: str | None = None,
                     firmware_repository: str | None = None) -> DesiredBmcState:
        return cls(bios=dict(profile.bios), boot=profile.boot, power=profile.power, boot_mac=boot_mac,
                   firmware=dict(profile.firmware), firmware_repository=firmware_repository)

    def as_dict(self) -> dict[str, Any]:
        return {"bios": dict(self.bios), "boot": self.boot.model_dump(), "power": self.power,
                "boot_mac": self.boot_mac}


@dataclass(frozen=True)
class Options:
    """How a run may act."""

    #: restart running nodes whose BIOS changes wait for a reboot (they boot through the one-time boot)
    reboot: bool = False
    #: refuse a node whose BMC does not report the inventory's boot MAC
    check_boot_mac: bool = True
    #: wait for power transitions (with the connection's power timeout)
    wait: bool = True


@dataclass(frozen=True)
class Media:
    """A virtual CD/DVD drive."""

    path: str
    image: str | None
    inserted: bool


@dataclass(frozen=True)
class Observed:
    """What the BMC reports, as far as the desired state needs it."""

    power: str | None
    #: current BIOS attributes; None when not read (nothing desired) or not offered (see bios_supported)
    bios: Mapping[str, Any] | None = None
    #: BIOS attributes whose pending value (Settings object) differs from the current one
    bios_pending: Mapping[str, Any] = field(default_factory=dict)
    bios_supported: bool = True
    boot_target: str | None = None
    boot_enabled: str | None = None
    boot_mode: str | None = None
    boot_targets: tuple[str, ...] = ()
    reset_types: tuple[str, ...] = ()
    #: the CD drive for virtual media (read only when the desired boot is Cd)
    media: Media | None = None
    media_supported: bool = True
    #: MACs reported under the system's EthernetInterfaces (read only when a boot MAC is to be checked)
    macs: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Change:
    area: Area
    item: str
    current: Any
    desired: Any
    note: str = ""

    def __str__(self) -> str:
        text = f"{self.area} {self.item}: {_show(self.current)} -> {_show(self.desired)}"
        return f"{text} ({self.note})" if self.note else text

    def as_dict(self) -> dict[str, Any]:
        return {"area": self.area, "item": self.item, "current": self.current, "desired": self.desired,
                "note": self.note}


@dataclass(frozen=True)
class Plan:
    """What applying the desired state to one node would change, and why it cannot when it cannot."""

    host: str
    changes: tuple[Change, ...] = ()
    #: BIOS attributes that already wait for the next reboot with the desired value
    pending: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    #: reasons the desired state cannot be applied (nothing is written when there are any)
    problems: tuple[str, ...] = ()
    #: the ComputerSystem.Reset type the power change uses
    reset_type: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def of(self, area: Area) -> list[Change]:
        return [c for c in self.changes if c.area == area]

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "changed": self.changed, "changes": [c.as_dict() for c in self.changes],
                "pending": dict(self.pending), "notes": list(self.notes), "problems": list(self.problems),
                "reset_type": self.reset_type}

    def lines(self) -> list[str]:
        """Human-readable plan, one line per change, pending value, note and problem."""
        out = [f"problem: {p}" for p in self.problems]
        out += [str(c) for c in self.changes]
        out += [f"bios {k}: {_show(v)} pending until the next reboot" for k, v in sorted(self.pending.items())]
        out += [f"note: {n}" for n in self.notes]
        return out


def _show(value: Any) -> str:
    return "-" if value is None else str(value)


def same_value(current: Any, desired: Any) -> bool:
    """BIOS values compare exactly, except numbers given as strings and booleans in any spelling."""
    if current == desired and type(current) is type(desired):
        return True
    if isinstance(current, bool) or isinstance(desired, bool):
        return str(current).lower() == str(desired).lower()
    for a, b in ((current, desired), (desired, current)):
        if isinstance(a, int) and isinstance(b, str) and b.strip().lstrip("-").isdigit():
            return a == int(b)
    return bool(current == desired)


def _pick(allowed: tuple[str, ...], *preferred: str) -> str:
    """The first preferred reset type the BMC allows (the first one when it lists none)."""
    if not allowed:
        return preferred[0]
    return next((p for p in preferred if p in allowed), preferred[0])


RESET_ON = ("On", "ForceOn", "PushPowerButton")
RESET_RESTART = ("ForceRestart", "GracefulRestart", "PowerCycle")
#: PushPowerButton is left out: it toggles, and a node that turned off meanwhile would turn back on
RESET_OFF = ("GracefulShutdown", "ForceOff")


def make_plan(host: str, desired: DesiredBmcState, observed: Observed, options: Options | None = None) -> Plan:
    """Compare and decide; never raises for a mismatch — problems are returned in the plan."""
    options = options or Options()
    problems: list[str] = []
    notes: list[str] = []
    changes: list[Change] = []
    pending: dict[str, Any] = {}

    # --- is this the node we think it is? -------------------------------------------------------------
    if options.check_boot_mac and desired.boot_mac and observed.macs is not None:
        reported = {m.lower() for m in observed.macs}
        if desired.boot_mac.lower() not in reported:
            problems.append(f"boot MAC {desired.boot_mac} (bitten_boot_mac) is not among the MACs this BMC "
                            f"reports ({', '.join(sorted(reported)) or 'none'}): bitten_bmc may point at another "
                            "node; correct the inventory, or pass --no-check-mac once the cabling is confirmed")

    # --- BIOS -----------------------------------------------------------------------------------------
    if desired.bios:
        if not observed.bios_supported or observed.bios is None:
            problems.append("the BMC offers no BIOS resource, but the hardware profile sets BIOS attributes")
        else:
            current = observed.bios
            for name, value in sorted(desired.bios.items()):
                if name not in current:
                    close = difflib.get_close_matches(name, list(current), n=3)
                    hint = f"; did you mean {', '.join(close)}?" if close else ""
                    problems.append(f"BIOS has no attribute {name!r}{hint} (check the profile's bios against the "
                                    "node's BIOS attribute registry)")
                    continue
                if name in observed.bios_pending:
                    if same_value(observed.bios_pending[name], value):
                        pending[name] = value
                        continue
                    changes.append(Change("bios", name, current[name], value,
                                          f"{observed.bios_pending[name]!r} was pending; applies at the next reboot"))
                    continue
                if not same_value(current[name], value):
                    changes.append(Change("bios", name, current[name], value, "applies at the next reboot"))

    # --- power and the one-time boot ------------------------------------------------------------------
    power = observed.power
    reset_type: str | None = None
    starts = False
    if power is None:
        problems.append("the BMC reports no PowerState for the system")
    elif desired.power == "On":
        if power in ("Off", "PoweringOff"):
            starts = True
            reset_type = _pick(observed.reset_types, *RESET_ON)
            changes.append(Change("power", "state", power, "On"))
        elif options.reboot and (pending or any(c.area == "bios" for c in changes)):
            starts = True
            reset_type = _pick(observed.reset_types, *RESET_RESTART)
            changes.append(Change("power", "state", power, "On", f"{reset_type}: BIOS changes wait for a reboot"))
        elif pending or any(c.area == "bios" for c in changes):
            notes.append("the node is running: BIOS changes apply at its next reboot (run with reboot to restart "
                         "it now)")
    elif power in ("On", "PoweringOn"):
        reset_type = _pick(observed.reset_types, *RESET_OFF)
        changes.append(Change("power", "state", power, "Off", reset_type))

    target = desired.boot.target
    if target != "None" and starts:
        if observed.boot_targets and target not in observed.boot_targets:
            problems.append(f"boot target {target} is not one the BMC allows ({', '.join(observed.boot_targets)})")
        if target == "Cd":
            url = desired.boot.image_url
            if not observed.media_supported or observed.media is None:
                problems.append("boot target Cd needs virtual media, which this BMC does not offer")
            elif not (observed.media.inserted and observed.media.image == url):
                changes.append(Change("media", "cd", observed.media.image if observed.media.inserted else None,
                                      url, "inserted as virtual media"))
        want_mode = desired.boot.mode if observed.boot_mode is not None else None
        current_boot = (observed.boot_target, observed.boot_enabled, observed.boot_mode if want_mode else None)
        if current_boot != (target, "Once", want_mode):
            changes.append(Change("boot", "override", _boot_text(*current_boot), _boot_text(target, "Once", want_mode),
                                  "for the power-on below"))
    elif target != "None" and desired.power == "On" and power in ("On", "PoweringOn"):
        notes.append(f"the node is running: the one-time boot to {target} is set only when bitten powers it on or "
                     "restarts it")

    return Plan(host=host, changes=tuple(changes), pending=pending, notes=tuple(notes), problems=tuple(problems),
                reset_type=reset_type if any(c.area == "power" for c in changes) else None)


def _boot_text(target: str | None, enabled: str | None, mode: str | None) -> str:
    text = f"{target or 'None'}/{enabled or 'Disabled'}"
    return f"{text}/{mode}" if mode else text
