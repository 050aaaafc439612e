"""Accounts on Redfish services (BMCs, CDUs): the password never appears in repr(), logs or results; where a site
keeps them and how bitten finds them, never in the repository.

Front ends take credentials from their own secret stores — an ansible-vault variable (Ansible), a Pulumi secret
(the stack) — and the command line and the cooling agent take them from the environment or a file:

- ``BITTEN_BMC_USERNAME`` and ``BITTEN_BMC_PASSWORD``: the same account on every BMC, or
- ``BITTEN_BMC_CREDENTIALS``: the path of a YAML/JSON file readable by its owner only (mode 0600 or 0400)::

      username: admin          # default account
      password: ...
      hosts:                   # per-host exceptions
        gpu01: {username: admin, password: ...}
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bitten.core.redfish.errors import CredentialsError


@dataclass(frozen=True)
class Credentials:
    """An account on a BMC."""

    username: str
    password: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password='***')"


ENV_USERNAME = "BITTEN_BMC_USERNAME"
ENV_PASSWORD = "BITTEN_BMC_PASSWORD"  # noqa: S105 - the name of a variable, not a password
ENV_FILE = "BITTEN_BMC_CREDENTIALS"


@dataclass(frozen=True)
class CredentialStore:
    """Credentials per inventory host, with a default for every other host."""

    default: Credentials | None = None
    hosts: Mapping[str, Credentials] = field(default_factory=dict)
    #: where they came from, for messages (never the values)
    source: str = "arguments"

    def for_host(self, host: str) -> Credentials:
        found = self.hosts.get(host) or self.default
        if found is None:
            raise CredentialsError(
                f"no BMC credentials for host {host} in {self.source}; set {ENV_USERNAME} and {ENV_PASSWORD}, "
                f"or point {ENV_FILE} at a credentials file (see bitten.core.redfish.credentials)")
        return found

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CredentialStore:
        """Credentials from the environment (see the module docstring); an empty store when none are set."""
        env = os.environ if environ is None else environ
        path = env.get(ENV_FILE)
        if path:
            return cls.from_file(Path(path))
        username, password = env.get(ENV_USERNAME), env.get(ENV_PASSWORD)
        if username and password:
            return cls(default=Credentials(username, password), source="the environment")
        if username or password:
            missing = ENV_PASSWORD if username else ENV_USERNAME
            raise CredentialsError(f"{missing} is not set while {ENV_USERNAME if username else ENV_PASSWORD} is; "
                                   "set both")
        return cls(source=f"the environment ({ENV_USERNAME}/{ENV_PASSWORD} or {ENV_FILE} unset)")

    @classmethod
    def from_file(cls, path: Path) -> CredentialStore:
        """Read a credentials file, refusing one that others than its owner can read."""
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            raise CredentialsError(f"{path}: cannot read the BMC credentials file ({exc.strerror})") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CredentialsError(f"{path}: BMC credentials file is accessible to others (mode "
                                   f"{stat.S_IMODE(mode):04o}); run chmod 600 {path}")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise CredentialsError(f"{path}: not valid YAML/JSON ({exc.__class__.__name__})") from None
        if not isinstance(data, Mapping):
            raise CredentialsError(f"{path}: expected a mapping with username, password and optional hosts")
        default = _pair(data, f"{path}") if ("username" in data or "password" in data) else None
        hosts_raw = data.get("hosts") or {}
        if not isinstance(hosts_raw, Mapping):
            raise CredentialsError(f"{path}: hosts must map host names to {{username, password}}")
        hosts = {str(h): _pair(v, f"{path}: hosts.{h}") for h, v in hosts_raw.items()}
        unknown = set(data) - {"username", "password", "hosts"}
        if unknown:
            raise CredentialsError(f"{path}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                                   "expected username, password, hosts")
        return cls(default=default, hosts=hosts, source=str(path))


def _pair(value: Any, where: str) -> Credentials:
    if not isinstance(value, Mapping) or not value.get("username") or not value.get("password"):
        raise CredentialsError(f"{where}: needs both username and password")
    return Credentials(str(value["username"]), str(value["password"]))
