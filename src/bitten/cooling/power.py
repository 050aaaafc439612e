"""Powering a loop's nodes off through their BMCs on a critical leak (``actions.leak.power_off``; off by default).

Through bitten's Redfish layer (bitten.core.redfish: TLS verified against ``bmc_ca_file``, errors naming the BMC),
with the accounts from an owner-only file on the agent host (``bmc_credentials_file``: username, password and
per-node ``hosts``, as bitten.core.redfish.credentials reads it; the cooling_agent role writes it from vault, it is
never in the repository). A node that is already off is left alone; the reset (ForceOff) is sent once, never
retried blindly (a POST that may have reached the BMC is not repeated), and the power state is read back until it
is Off or ``wait_s`` passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bitten.cooling.config import AgentConfig, BmcEntry
from bitten.core.redfish.connection import Connection
from bitten.core.redfish.credentials import CredentialStore
from bitten.core.redfish.endpoint import Endpoint, Timeouts, Tls
from bitten.core.redfish.errors import RedfishError
from bitten.core.retry import Backoff

#: reads that may be repeated (the client never repeats a POST that may have reached the BMC)
READ_RETRY = Backoff(attempts=3, initial=0.5, maximum=2.0)


@dataclass
class BmcPower:
    """Power state and ForceOff for the nodes of the agent's loops (implements actions.PowerControl)."""

    bmcs: dict[str, BmcEntry]
    credentials: CredentialStore
    tls: Tls
    timeouts: Timeouts = field(default_factory=lambda: Timeouts(connect=5.0, read=15.0))
    #: how long the power state may take to read Off after the reset
    wait_s: float = 60.0
    poll_s: float = 1.0
    sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_config(cls, config: AgentConfig) -> BmcPower:
        assert config.bmc_credentials_file is not None
        bmcs = {n.name: n.bmc for loop in config.loops.values() for n in loop.nodes if n.bmc is not None}
        return cls(bmcs, CredentialStore.from_file(Path(config.bmc_credentials_file)),
                   Tls(verify=True, ca_file=config.bmc_ca_file))

    def _endpoint(self, node: str) -> Endpoint:
        bmc = self.bmcs.get(node)
        if bmc is None:
            raise RedfishError(f"node {node}", "no BMC configured for it")
        return Endpoint(host=node, url=bmc.url, system_id=bmc.system_id, flavour=bmc.flavour)

    def _connection(self, node: str) -> Connection:
        return Connection(self._endpoint(node), self.credentials.for_host(node), self.tls, self.timeouts, READ_RETRY)

    @staticmethod
    def _state(conn: Connection) -> str:
        system = conn.get_json(conn.endpoint.system_path)
        state = system.get("PowerState")
        return state if isinstance(state, str) else "Unknown"

    def power_state(self, node: str) -> str:
        with self._connection(node) as conn:
            return self._state(conn)

    def power_off(self, node: str) -> str:
        """ForceOff once; the power state read back afterwards (Off, or what the BMC still reports)."""
        with self._connection(node) as conn:
            system: dict[str, Any] = conn.get_json(conn.endpoint.system_path)
            action = (system.get("Actions") or {}).get("#ComputerSystem.Reset") or {}
            target = action.get("target") if isinstance(action, dict) else None
            if not isinstance(target, str):
                raise RedfishError(conn.endpoint.where, "the system offers no #ComputerSystem.Reset action")
            allowed = action.get("ResetType@Redfish.AllowableValues")
            reset = "ForceOff" if not isinstance(allowed, list) or "ForceOff" in allowed else "Off"
            conn.post(target, {"ResetType": reset}, doing=f"POST {target} {reset}")  # sent once, never repeated
        deadline = time.monotonic() + self.wait_s
        with self._connection(node) as conn:
            state = self._state(conn)
            while state != "Off" and time.monotonic() < deadline:
                self.sleep(self.poll_s)
                state = self._state(conn)
        return state
