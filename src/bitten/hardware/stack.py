"""The hardware Pulumi program: one RedfishNode per node with a BMC and a hardware profile, from the site model.

Configuration (namespace ``bitten-hardware``; see stacks/hardware/README.md):

- ``inventory`` (required): the site's Ansible inventory, relative to the project directory;
- ``bmcUsername`` and ``bmcPassword`` (``pulumi config set --secret``), or ``bmcCredentials``: a secret object
  ``{default: {username, password}, hosts: {<host>: {username, password}}}``, or ``bmcCredentialsFile``: a
  credentials file as for ``bitten hardware`` (the lab's, under .lab/); the environment
  (BITTEN_BMC_USERNAME/PASSWORD) last. Whatever the source, the password becomes a Pulumi secret;
- ``bmcCaFile``: CA bundle of the BMC certificates (its text goes into the inputs); ``bmcVerify`` (default true);
- ``limit``: host or group names; ``reboot``, ``checkBootMac``, ``powerTimeout``, ``timeout``, ``retries``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi

from bitten.hardware.credentials import ENV_PASSWORD, ENV_USERNAME, CredentialStore
from bitten.hardware.pulumi_provider import RedfishNode, RedfishNodeArgs
from bitten.hardware.targets import desired_of, select_hosts
from bitten.site.model import Site

Account = tuple[pulumi.Input[str], pulumi.Input[str]]


def declare(site: Site, account: Callable[[str], Account], ca_pem: str | None = None, verify: bool = True,
            limit: Sequence[str] = (), settings: Mapping[str, Any] | None = None) -> dict[str, RedfishNode]:
    """A RedfishNode for every selected node with a BMC and a hardware profile."""
    settings = dict(settings or {})
    nodes: dict[str, RedfishNode] = {}
    for host in select_hosts(site, limit):
        node = site.nodes[host]
        if node.bmc is None or site.profile_of(host) is None:
            continue
        desired = desired_of(site, host)
        username, password = account(host)
        nodes[host] = RedfishNode(host, RedfishNodeArgs(
            host=host, url=node.bmc.url, system_id=node.bmc.system_id, flavour=node.bmc.flavour,
            username=username, password=pulumi.Output.secret(password), bios=dict(desired.bios),
            boot=desired.boot.model_dump(exclude_none=True), power=desired.power, boot_mac=desired.boot_mac,
            ca_pem=ca_pem, verify=verify, **settings))
    return nodes


def export(nodes: Mapping[str, RedfishNode]) -> None:
    """Inventory facts per host, and the hosts whose BIOS changes wait for a reboot."""
    pulumi.export("nodes", {host: {"macs": n.macs, "serial": n.serial, "model": n.model, "power": n.power_state,
                                   "pending": n.pending} for host, n in sorted(nodes.items())})
    pulumi.export("macs", {host: n.macs for host, n in sorted(nodes.items())})


def accounts(config: pulumi.Config, project_dir: Path) -> Callable[[str], Account]:
    per_host = config.get_secret_object("bmcCredentials")
    username = config.get("bmcUsername") or os.environ.get(ENV_USERNAME)
    password: pulumi.Input[str] | None = config.get_secret("bmcPassword")
    store: CredentialStore | None = None
    path = config.get("bmcCredentialsFile")
    if path:
        store = CredentialStore.from_file(project_dir / path)
    elif password is None and os.environ.get(ENV_PASSWORD):
        password = pulumi.Output.secret(os.environ[ENV_PASSWORD])

    def account(host: str) -> Account:
        if per_host is not None:
            def pick(data: Any, key: str) -> str:
                entry = (data.get("hosts") or {}).get(host) or data.get("default") or {}
                if not entry.get(key):
                    raise ValueError(f"bmcCredentials has no {key} for host {host} (nor a default)")
                return str(entry[key])

            return (per_host.apply(lambda d: pick(d, "username")),
                    pulumi.Output.secret(per_host.apply(lambda d: pick(d, "password"))))
        if store is not None:
            creds = store.for_host(host)
            return creds.username, pulumi.Output.secret(creds.password)
        if not username or password is None:
            raise ValueError(f"no BMC credentials for host {host}: set bitten-hardware:bmcUsername and "
                             "`pulumi config set --secret bitten-hardware:bmcPassword`, bmcCredentials, "
                             f"bmcCredentialsFile, or {ENV_USERNAME}/{ENV_PASSWORD}")
        return username, password

    return account
