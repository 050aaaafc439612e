"""One node through its BMC: observe, plan, apply (BIOS, virtual media, one-time boot, power), verify.

What differs between vendors (sessions or basic auth, where virtual media lives and how an image goes in, whether
the boot override carries the boot mode, where BIOS changes go) is the endpoint's flavour, a module of
bitten.core.redfish.flavours; this module is the same for all of them.

Every GET costs a fleet of hundreds a round trip per node, so each resource is read once per observation: the
system document read by the last power poll is the one the verification looks at, writes carry the ETag of the
document they were planned from, and a resource is never fetched just to learn its ETag.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from bitten.core.redfish.connection import Connection
from bitten.core.redfish.document import link, members
from bitten.core.redfish.errors import PlanError, PowerTimeout, RedfishRequestError, RedfishUnsupported
from bitten.hardware.plan import DesiredBmcState, Media, Observed, Options, Plan, make_plan, same_value

LOG = logging.getLogger(__name__)


class BmcNode:
    """A node's desired state applied through one authenticated connection."""

    def __init__(self, conn: Connection, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.conn = conn
        self.endpoint = conn.endpoint
        self.flavour = conn.flavour
        self._sleep = sleep
        self._clock = clock
        self._system: dict[str, Any] | None = None
        self._system_etag: str | None = None
        #: True while the system document is the answer to the latest GET (no write since)
        self._fresh = False
        self._bios_settings: tuple[str, str | None] | None = None
        self._media_doc: dict[str, Any] | None = None
        self._macs: tuple[str, ...] | None = None
        #: what happened besides the plan (a graceful shutdown that had to be forced, ...)
        self.notes: list[str] = []

    # --- reading ---------------------------------------------------------------------------------------
    def system(self, refresh: bool = False) -> dict[str, Any]:
        """The system document; re-read when asked to and not read since the last write."""
        if self._system is None or (refresh and not self._fresh):
            self._system, self._system_etag = self.conn.get(self.endpoint.system_path)
            self._fresh = True
        return self._system

    @property
    def system_uri(self) -> str:
        """Where the system lives: its document's @odata.id (an alias such as sushy-tools' /Systems/<name> redirects
        reads to /Systems/<uuid>, and a write is never repeated at the address a redirect names)."""
        uri = self.system().get("@odata.id")
        return uri if isinstance(uri, str) and uri.startswith("/") else self.endpoint.system_path

    def _stale(self) -> None:
        self._fresh = False

    def observe(self, desired: DesiredBmcState, options: Options | None = None) -> Observed:
        """Read what the plan needs, and nothing more."""
        options = options or Options()
        raw = self.system(refresh=True)
        boot = raw.get("Boot") or {}
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
            boot_mode=boot.get("BootSourceOverrideMode") if self.flavour.boot_mode_in_override else None,
            boot_targets=tuple(boot.get("BootSourceOverrideTarget@Redfish.AllowableValues") or ()),
            reset_types=self.reset_types(raw), media=media, media_supported=media_supported, macs=macs)

    def reset_types(self, raw: dict[str, Any]) -> tuple[str, ...]:
        """The ResetType values the system allows: inline, or from the action's @Redfish.ActionInfo."""
        action = (raw.get("Actions") or {}).get("#ComputerSystem.Reset") or {}
        allowed = action.get("ResetType@Redfish.AllowableValues")
        if allowed is None and isinstance(action.get("@Redfish.ActionInfo"), str):
            info = self.conn.get_json(action["@Redfish.ActionInfo"], optional=True)
            for parameter in info.get("Parameters") or []:
                if isinstance(parameter, dict) and parameter.get("Name") == "ResetType":
                    allowed = parameter.get("AllowableValues")
        return tuple(sorted(str(v) for v in allowed or ()))

    def _read_bios(self, raw: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any], bool]:
        path = link(raw, "Bios")
        if path is None:
            return None, {}, False
        body, etag = self.conn.get(path)
        current = dict(body.get("Attributes") or {})
        settings_path, settings_etag, separate = self.flavour.bios_settings(path, body)
        if not separate:
            # no separate settings object: the BIOS resource itself takes the PATCH
            self._bios_settings = (settings_path, etag)
            return current, {}, True
        self._bios_settings = (settings_path, settings_etag)
        staged = self.conn.get_json(settings_path).get("Attributes") or {}
        pending = {k: v for k, v in staged.items() if k in current and not same_value(current[k], v)}
        return current, pending, True

    def read_macs(self, raw: dict[str, Any] | None = None) -> tuple[str, ...]:
        """The MACs under the system's EthernetInterfaces (read once per node run)."""
        if self._macs is not None:
            return self._macs
        raw = raw if raw is not None else self.system()
        path = link(raw, "EthernetInterfaces")
        if path is None:
            return ()
        macs: set[str] = set()
        for nic in self.conn.members(path):
            for key in ("MACAddress", "PermanentMACAddress"):
                value = nic.get(key)
                if isinstance(value, str) and value.count(":") == 5:
                    macs.add(value.lower())
        self._macs = tuple(sorted(macs))
        return self._macs

    def _find_cd(self, raw: dict[str, Any]) -> Media | None:
        collection = self.flavour.media_collection(raw, self.conn.get_json)
        if collection is None:
            return None
        for path in members(self.conn.get_json(collection)):
            body = self.conn.get_json(path)
            types = {str(t).upper() for t in body.get("MediaTypes") or ()}
            if types & {"CD", "DVD"}:
                self._media_doc = body
                image = body.get("Image") or None
                return Media(path=path, image=image, inserted=bool(body.get("Inserted")))
        return None

    # --- planning --------------------------------------------------------------------------------------
    def plan(self, desired: DesiredBmcState, options: Options | None = None) -> tuple[Plan, Observed]:
        options = options or Options()
        observed = self.observe(desired, options)
        return make_plan(self.endpoint.host, desired, observed, options), observed

    # --- applying --------------------------------------------------------------------------------------
    def apply(self, desired: DesiredBmcState, options: Options | None = None) -> tuple[Plan, Observed]:
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
            self.reset(plan.reset_type)
            if options.wait:
                try:
                    self.wait_power(target, plan.reset_type)
                except PowerTimeout:
                    if plan.reset_type != "GracefulShutdown" or "ForceOff" not in observed.reset_types:
                        raise
                    # the operating system ignored the request (or has none yet): hold the button, as Ironic does
                    LOG.warning("%s: GracefulShutdown timed out; forcing the power off", self.endpoint.where)
                    self.notes.append("GracefulShutdown timed out; the power was forced off")
                    self.reset("ForceOff")
                    self.wait_power(target, "ForceOff")
        after = self.observe(desired, Options(reboot=options.reboot, check_boot_mac=False, wait=options.wait))
        self._verify(desired, plan, after)
        return plan, after

    def _write_bios(self, attributes: dict[str, Any]) -> None:
        assert self._bios_settings is not None, "observe() reads the BIOS before a write"
        path, etag = self._bios_settings
        self.conn.patch(path, {"Attributes": attributes}, etag=etag)
        LOG.info("%s: BIOS %s written to %s", self.endpoint.where, ", ".join(sorted(attributes)), path)

    def _insert_media(self, media: Media, url: str) -> None:
        device = self._media_doc or self.conn.get_json(media.path)
        with self.conn.translated(f"virtual media {media.path}"):
            self.flavour.insert_media(self.conn.connector, media.path, device, url)
        self._media_doc = None

    def _set_boot(self, desired: DesiredBmcState, observed: Observed) -> None:
        boot: dict[str, Any] = {"BootSourceOverrideTarget": desired.boot.target,
                                "BootSourceOverrideEnabled": "Once"}
        if observed.boot_mode is not None:
            boot["BootSourceOverrideMode"] = desired.boot.mode
        self.conn.patch(self.system_uri, {"Boot": boot}, etag=self._system_etag,
                        doing="set the one-time boot")
        self._stale()

    def reset(self, reset_type: str) -> None:
        """POST ComputerSystem.Reset (once: a reset is never repeated blindly)."""
        raw = self.system()
        allowed = self.reset_types(raw)
        if allowed and reset_type not in allowed:
            raise RedfishRequestError(self.endpoint.where, f"ResetType {reset_type} is not one the system allows "
                                      f"({', '.join(allowed)})")
        action = (raw.get("Actions") or {}).get("#ComputerSystem.Reset") or {}
        target = action.get("target")
        if not isinstance(target, str):
            raise RedfishUnsupported(self.endpoint.where, "the system offers no #ComputerSystem.Reset action")
        self.conn.post(target, {"ResetType": reset_type}, doing=f"ComputerSystem.Reset {reset_type}")
        self._stale()
        LOG.info("%s: %s requested", self.endpoint.where, reset_type)

    def wait_power(self, target: str, action: str) -> None:
        """Poll PowerState until ``target``; the delay grows from 0.1 s to the poll interval."""
        timeouts = self.conn.timeouts
        deadline = self._clock() + timeouts.power
        delay = 0.1
        while True:
            state = self.system(refresh=True).get("PowerState")
            if state == target:
                return
            self._stale()
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise PowerTimeout(self.endpoint.where, f"{action} requested, but the system is still {state} "
                                   f"after {timeouts.power:g} s", fix="check the node at its console; raise the "
                                   "power timeout for slow machines")
            self._sleep(min(delay, remaining))
            delay = min(delay * 2, timeouts.poll)

    def _verify(self, desired: DesiredBmcState, plan: Plan, after: Observed) -> None:
        """The BMC accepted the writes; check that it reports them (current or pending)."""
        if plan.of("bios") and after.bios is not None:
            lost = [c.item for c in plan.of("bios")
                    if not same_value(after.bios_pending.get(c.item, after.bios.get(c.item)), c.desired)]
            if lost:
                raise RedfishRequestError(self.endpoint.where, "the BMC accepted BIOS change(s) but reports "
                                          f"neither current nor pending value for {', '.join(lost)}")
