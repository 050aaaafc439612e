"""BMC user names and passwords for the hardware front ends: bitten.core.redfish.credentials (one home for Redfish
accounts, shared with the cooling agent, which powers nodes off through their BMCs on a critical leak)."""

from __future__ import annotations

from bitten.core.redfish.credentials import ENV_FILE, ENV_PASSWORD, ENV_USERNAME, CredentialStore

__all__ = ["ENV_FILE", "ENV_PASSWORD", "ENV_USERNAME", "CredentialStore"]
