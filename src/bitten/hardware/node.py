"""One node through its BMC: observe, plan, apply (BIOS, virtual media, one-time boot, power), verify.

Flavours:
- ``hpe_ilo``: Redfish sessions only; BIOS changes go to the object that ``@Redfish.Settings`` names (on iLO
  ``/redfish/v1/systems/1/bios/settings/``); virtual media under the manager (``Managers/1/VirtualMedia``),
  inserted by PATCHing ``Image`` with ``Oem.Hpe.BootOnNextServerReset``; the boot mode is the BIOS attribute
  ``BootMode`` (iLO does not take BootSourceOverrideMode), so it is never sent with the boot override.
- ``generic``: plain Redfish — session or basic auth, virtual media under the system when it has any (else the
  manager), the standard InsertMedia action (sushy handles BMCs that want PATCH instead), BootSourceOverrideMode.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import sushy
from sushy.resources.manager.virtual_media import VirtualMedia

from bitten.core.redfish.connection import Connection, translated
from bitten.core.redfish.errors import BmcRequestError, PlanError, PowerTimeout
from bitten.hardware.plan import Desired, Media, Observed, Options, Plan, make_plan, same_value

LOG = logging.getLogger(__name__)


def _link(body: dict[str, Any], *keys: str) -> str | None:
    value: Any = body
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("@odata.id")
    return value if isinstance(value, str) and value else None


def _members(body: dict[str, Any]) -> list[str]:
    return [m["@odata.id"] for m in body.get("Members", []) if isinstance(m, dict) and "@odata.id" in m]


class Node:
    """A node's desired state applied through one authenticated connection."""

    def __init__(self, conn: Connection, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.conn = conn
        self.endpoint = conn.endpoint
        self._sleep = sleep
        self._clock = clock
        self._system: Any = None
        self._bios_settings: tuple[str, str | None] | None = None
        #: what happened besides the plan (a graceful shutdown that had to be forced, ...)
        self.notes: list[str] = []

    # --- reading ---------------------------------------------------------------------------------------
    def system(self, refresh: bool = False) -> Any:
        with translated(self.endpoint, self.conn.credentials, f"GET {self.endpoint.system_path}"):
            if self._system is None:
                self._system = self.conn.root.get_system(self.endpoint.system_path)
            elif refresh:
                self._system.refresh(force=True)
        return self._system

    def observe(self, desired: Desired, options: Options | None = None) -> Observed:
        """Read what the plan needs, and nothing more (a fleet of hundreds pays for every GET)."""
        options = options or Options()
        system = self.system(refresh=True)
        raw: dict[str, Any] = system.json
        boot = raw.get("Boot") or {}
        with translated(self.endpoint, self.conn.credentials, "reset types"):
            reset_types = tuple(sorted(v.value for v in system.get_allowed_reset_system_values()))
        bios: dict[str, Any] | None = None
        pending: dict[str, Any] = {}
        bios_supported = True
        if desired.bios:
            bios, pending, bios_supported = self._read_bios(raw)
        media, media_supported = None, True
        if desired.boot.target == "Cd":
            media = self._find_cd(raw)
            media_supported = media is not None
        macs = self.read_macs(raw) if (options.check_boot_mac and desired.boot_mac) else None
        return Observed(
            power=raw.get("PowerState"), bios=bios, bios_pending=pending, bios_supported=bios_supported,
            boot_target=boot.get("BootSourceOverrideTarget"), boot_enabled=boot.get("BootSourceOverrideEnabled"),
            boot_mode=None if self.endpoint.flavour == "hpe_ilo" else boot.get("BootSourceOverrideMode"),
            boot_targets=tuple(boot.get("BootSourceOverrideTarget@Redfish.AllowableValues") or ()),
            reset_types=reset_types, media=media, media_supported=media_supported, macs=macs)

    def _read_bios(self, raw: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any], bool]:
        path = _link(raw, "Bios")
        if path is None:
            return None, {}, False
        body = self.conn.get_json(path)
        current = dict(body.get("Attributes") or {})
        settings = body.get("@Redfish.Settings") or {}
        settings_path = _link(settings, "SettingsObject")
        if settings_path is None:
            # no separate settings object: the BIOS resource itself takes the PATCH
            self._bios_settings = (path, None)
            return current, {}, True
        self._bios_settings = (settings_path, settings.get("ETag"))
        staged = self.conn.get_json(settings_path).get("Attributes") or {}
        pending = {k: v for k, v in staged.items() if k in current and not same_value(current[k], v)}
        return current, pending, True

    def read_macs(self, raw: dict[str, Any] | None = None) -> tuple[str, ...]:
        raw = raw if raw is not None else self.system().json
        path = _link(raw, "EthernetInterfaces")
        if path is None:
            return ()
        macs: set[str] = set()
        for member in _members(self.conn.get_json(path)):
            nic = self.conn.get_json(member)
            for key in ("MACAddress", "PermanentMACAddress"):
                value = nic.get(key)
                if isinstance(value, str) and value.count(":") == 5:
                    macs.add(value.lower())
        return tuple(sorted(macs))

    def _media_collection(self, raw: dict[str, Any]) -> str | None:
        if self.endpoint.flavour != "hpe_ilo":
            own = _link(raw, "VirtualMedia")
            if own:
                return own
        manager = _link(raw, "Links", "ManagedBy")
        if manager is None:
            return None
        return _link(self.conn.get_json(manager), "VirtualMedia")

    def _find_cd(self, raw: dict[str, Any]) -> Media | None:
        collection = self._media_collection(raw)
        if collection is None:
            return None
        for member in _members(self.conn.get_json(collection)):
            body = self.conn.get_json(member)
            types = {str(t).upper() for t in body.get("MediaTypes") or ()}
            if types & {"CD", "DVD"}:
                image = body.get("Image") or None
                return Media(path=member, image=image, inserted=bool(body.get("Inserted")))
        return None

    # --- planning --------------------------------------------------------------------------------------
    def plan(self, desired: Desired, options: Options | None = None) -> tuple[Plan, Observed]:
        options = options or Options()
        observed = self.observe(desired, options)
        return make_plan(self.endpoint.host, desired, observed, options), observed

    # --- applying --------------------------------------------------------------------------------------
    def apply(self, desired: Desired, options: Options | None = None) -> tuple[Plan, Observed]:
        """Plan, refuse on problems, write, wait for power, and return the plan with the state after."""
        options = options or Options()
        plan, observed = self.plan(desired, options)
        if plan.problems:
            raise PlanError(self.endpoint.where, "; ".join(plan.problems))
        if not plan.changed:
            return plan, observed
        bios = {c.item: c.desired for c in plan.of("bios")}
        if bios:
            self._write_bios(bios)
        for change in plan.of("media"):
            assert observed.media is not None
            self._insert_media(observed.media, str(change.desired))
        if plan.of("boot"):
            self._set_boot(desired, observed)
        if plan.reset_type:
            target = str(plan.of("power")[0].desired)
            self._reset(plan.reset_type)
            if options.wait:
                try:
                    self.wait_power(target, plan.reset_type)
                except PowerTimeout:
                    if plan.reset_type != "GracefulShutdown" or "ForceOff" not in observed.reset_types:
                        raise
                    # the operating system ignored the request (or has none yet): hold the button, as Ironic does
                    LOG.warning("%s: GracefulShutdown timed out; forcing the power off", self.endpoint.where)
                    self.notes.append("GracefulShutdown timed out; the power was forced off")
                    self._reset("ForceOff")
                    self.wait_power(target, "ForceOff")
        after = self.observe(desired, Options(reboot=options.reboot, check_boot_mac=False, wait=options.wait))
        self._verify(desired, plan, after)
        return plan, after

    def _write_bios(self, attributes: dict[str, Any]) -> None:
        assert self._bios_settings is not None, "observe() reads the BIOS before a write"
        path, etag = self._bios_settings
        with translated(self.endpoint, self.conn.credentials, f"PATCH {path}"):
            self.conn.connector.patch(path, data={"Attributes": attributes}, etag=etag)
        LOG.info("%s: BIOS %s written to %s", self.endpoint.where, ", ".join(sorted(attributes)), path)

    def _insert_media(self, media: Media, url: str) -> None:
        conn = self.conn.connector
        with translated(self.endpoint, self.conn.credentials, f"virtual media {media.path}"):
            device = VirtualMedia(conn, media.path)
            standard = bool((device.json.get("Actions") or {}).get("#VirtualMedia.InsertMedia"))
            if media.inserted and media.image != url:
                if self.endpoint.flavour == "hpe_ilo" and not standard:
                    conn.patch(media.path, data={"Image": None})
                else:
                    device.eject_media()
                device.refresh(force=True)
            if self.endpoint.flavour == "hpe_ilo" and not standard:
                # HPE's documented way on iLO 5: PATCH the image and boot from it at the next server reset
                conn.patch(media.path, data={"Image": url, "Oem": {"Hpe": {"BootOnNextServerReset": True}}})
            else:
                device.insert_media(url, inserted=True, write_protected=True)

    def _set_boot(self, desired: Desired, observed: Observed) -> None:
        mode = None
        if observed.boot_mode is not None:
            mode = sushy.BootSourceOverrideMode(desired.boot.mode)
        system = self.system()
        with translated(self.endpoint, self.conn.credentials, "set the one-time boot"):
            system.set_system_boot_options(target=sushy.BootSource(desired.boot.target),
                                           enabled=sushy.BootSourceOverrideEnabled.ONCE, mode=mode)

    def _reset(self, reset_type: str) -> None:
        system = self.system()
        with translated(self.endpoint, self.conn.credentials, f"ComputerSystem.Reset {reset_type}"):
            system.reset_system(sushy.ResetType(reset_type))
        LOG.info("%s: %s requested", self.endpoint.where, reset_type)

    def wait_power(self, target: str, action: str) -> None:
        """Poll PowerState until ``target``; the delay grows from 0.1 s to the poll interval."""
        timeouts = self.conn.timeouts
        deadline = self._clock() + timeouts.power
        delay = 0.1
        while True:
            state = self.system(refresh=True).json.get("PowerState")
            if state == target:
                return
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise PowerTimeout(self.endpoint.where, f"{action} requested, but the system is still {state} "
                                   f"after {timeouts.power:g} s", fix="check the node at its console; raise the "
                                   "power timeout for slow machines")
            self._sleep(min(delay, remaining))
            delay = min(delay * 2, timeouts.poll)

    def _verify(self, desired: Desired, plan: Plan, after: Observed) -> None:
        """The BMC accepted the writes; check that it reports them (current or pending)."""
        if plan.of("bios") and after.bios is not None:
            lost = [c.item for c in plan.of("bios")
                    if not same_value(after.bios_pending.get(c.item, after.bios.get(c.item)), c.desired)]
            if lost:
                raise BmcRequestError(self.endpoint.where, "the BMC accepted BIOS change(s) but reports neither "
                                      f"current nor pending value for {', '.join(lost)}")
