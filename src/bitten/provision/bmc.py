"""The boot stage's view of a node's BMC, through bitten's one Redfish client (bitten.core.redfish).

Two things only: read what the BMC says (power, BootProgress, boot override) and, after a disk deploy, make Hdd
the boot target (read back before anything else) and restart. The restart is a POST, which the client never
repeats on its own: it is sent once and its outcome read back.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bitten.core.redfish.connection import Connection
from bitten.core.redfish.credentials import Credentials
from bitten.core.redfish.endpoint import Endpoint, Timeouts, Tls
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


def _reset_target(system_json: dict[str, Any], path: str) -> str:
    action = (system_json.get("Actions") or {}).get("#ComputerSystem.Reset") or {}
    target = action.get("target")
    return target if isinstance(target, str) and target else f"{path}/Actions/ComputerSystem.Reset"


class RedfishBmc:
    def __init__(self, endpoint: Endpoint, credentials: Credentials, tls: Tls | None = None,
                 timeouts: Timeouts | None = None) -> None:
        self.endpoint = endpoint
        self.credentials = credentials
        self.tls = tls or Tls()
        self.timeouts = timeouts or Timeouts(read=30.0)

    def _connect(self) -> Connection:
        return Connection(self.endpoint, self.credentials, self.tls, self.timeouts)

    def view(self) -> BmcView:
        try:
            with self._connect() as conn:
                return view_of(conn.get_json(self.endpoint.system_path))
        except RedfishError as exc:
            return BmcView(power=None, error=str(exc))

    def _reset(self, conn: Connection, reset_type: str) -> BmcView:
        path = self.endpoint.system_path
        target = _reset_target(conn.get_json(path), path)
        conn.post(target, {"ResetType": reset_type}, doing=f"ComputerSystem.Reset {reset_type}")
        return view_of(conn.get_json(path))

    def force_off(self) -> BmcView:
        """Hold the power button (sent once, read back)."""
        try:
            with self._connect() as conn:
                return self._reset(conn, "ForceOff")
        except RedfishError as exc:
            return BmcView(power=None, error=str(exc))

    def boot_from_disk(self) -> BmcView:
        try:
            with self._connect() as conn:
                # the system's own address: an alias redirects reads, and a write is never repeated elsewhere
                uri = conn.get_json(self.endpoint.system_path).get("@odata.id")
                path = uri if isinstance(uri, str) and uri.startswith("/") else self.endpoint.system_path
                conn.patch(path, {"Boot": {"BootSourceOverrideTarget": "Hdd",
                                           "BootSourceOverrideEnabled": "Continuous"}},
                           doing="set the boot target Hdd")
                after = view_of(conn.get_json(path))
                if after.boot_target != "Hdd":
                    return replace(after, error=f"the BMC accepted boot target Hdd but reports {after.boot_target}")
                return self._reset(conn, "ForceRestart")
        except RedfishError as exc:
            return BmcView(power=None, error=str(exc))
