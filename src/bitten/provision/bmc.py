"""The boot stage's view of a node's BMC, through bitten's one Redfish client (sushy, TLS, retries, errors).

Two things only: read what the BMC says (power, BootProgress, boot override) and, after a disk deploy, make Hdd
the boot target and restart. The restart is not retried blindly (a reset is not idempotent): it is sent once and
the outcome read back.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import sushy

from bitten.core.redfish.connection import Connection, Endpoint, RetryPolicy, Timeouts, Tls, translated
from bitten.core.redfish.credentials import Credentials
from bitten.core.redfish.errors import RedfishError
from bitten.provision.boot import BmcView


def view_of(system_json: dict[str, Any]) -> BmcView:
    boot = system_json.get("Boot") or {}
    progress = system_json.get("BootProgress") or {}
    last = progress.get("LastState")
    if last == "OEM":
        last = progress.get("OemLastState") or last
    return BmcView(power=system_json.get("PowerState"), boot_progress=last,
                   boot_target=boot.get("BootSourceOverrideTarget"), boot_enabled=boot.get("BootSourceOverrideEnabled"),
                   health=(system_json.get("Status") or {}).get("Health"))


class RedfishBmc:
    def __init__(self, endpoint: Endpoint, credentials: Credentials, tls: Tls | None = None,
                 timeouts: Timeouts | None = None) -> None:
        self.endpoint = endpoint
        self.credentials = credentials
        self.tls = tls or Tls()
        self.timeouts = timeouts or Timeouts(read=30.0)

    def _connect(self, retry: RetryPolicy | None = None) -> Connection:
        return Connection(self.endpoint, self.credentials, self.tls, self.timeouts, retry)

    def view(self) -> BmcView:
        try:
            with self._connect() as conn:
                return view_of(conn.get_json(self.endpoint.system_path))
        except RedfishError as exc:
            return BmcView(power=None, error=str(exc))

    def force_off(self) -> BmcView:
        """Hold the power button (sent once, read back)."""
        try:
            with self._connect(RetryPolicy(attempts=1)) as conn:
                system = conn.root.get_system(self.endpoint.system_path)
                with translated(self.endpoint, self.credentials, "ComputerSystem.Reset ForceOff"):
                    system.reset_system(sushy.ResetType.FORCE_OFF)
                return view_of(conn.get_json(self.endpoint.system_path))
        except RedfishError as exc:
            return BmcView(power=None, error=str(exc))

    def boot_from_disk(self) -> BmcView:
        try:
            with self._connect() as conn:
                system = conn.root.get_system(self.endpoint.system_path)
                with translated(self.endpoint, self.credentials, "set the boot target Hdd"):
                    system.set_system_boot_options(target=sushy.BootSource.HDD,
                                                   enabled=sushy.BootSourceOverrideEnabled.CONTINUOUS)
                after = view_of(conn.get_json(self.endpoint.system_path))
                if after.boot_target != "Hdd":
                    return replace(after, error=f"the BMC accepted boot target Hdd but reports "
                                                f"{after.boot_target}")
            # the reset once, never retried: a second reset would interrupt the boot it started
            with self._connect(RetryPolicy(attempts=1)) as conn:
                system = conn.root.get_system(self.endpoint.system_path)
                with translated(self.endpoint, self.credentials, "ComputerSystem.Reset ForceRestart"):
                    system.reset_system(sushy.ResetType.FORCE_RESTART)
                return view_of(conn.get_json(self.endpoint.system_path))
        except RedfishError as exc:
            return BmcView(power=None, error=str(exc))
