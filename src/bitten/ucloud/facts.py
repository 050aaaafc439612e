"""What the ucloud_im role needs from the site model (lookup ``bitten_facts``, 'ucloud'): whether this host is a
frontend, the IM's database, ports and directories, the hook scripts its config names, the machine types."""

from __future__ import annotations

from typing import Any

from bitten.site import model as m

#: the IM's database runs on the frontend itself
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def frontends(site: m.Site) -> list[str]:
    return site.hosts_in(m.GROUP_UCLOUD) if site.ucloud is not None else []


def hook_scripts(uc: m.UCloud) -> list[str]:
    """The scripts config.yml names (identity management, file systems), sorted, each once."""
    scripts: set[str] = set()
    if isinstance(uc.identity_management, m.ScriptedIdentity):
        scripts.update((uc.identity_management.on_user_connected, uc.identity_management.on_project_updated))
    for fs in uc.file_systems.values():
        scripts.update((fs.management.on_quota_updated, fs.management.on_usage_reporting))
    return sorted(scripts)


def facts(site: m.Site, host: str) -> dict[str, Any]:
    uc = site.ucloud
    if uc is None:
        return {"configured": False, "frontend": False, "frontends": []}
    db = uc.database
    return {
        "configured": True,
        "frontend": host in site.hosts_in(m.GROUP_UCLOUD),
        "frontends": frontends(site),
        #: the ucloud user and groups with the frontend's ids: on the frontends, and on the Slurm controllers and
        #: accounting hosts (slurmdbd maps the uid in a munge credential to the operator ucloud)
        "service_account": host in {*frontends(site), *site.controllers, *site.dbd_hosts},
        "provider_id": uc.provider_id,
        "public_host": uc.public_host,
        "public_port": uc.public_port,
        "gateway_port": uc.gateway_port,
        "tls_directory": uc.tls_directory,
        "database": {"host": db.host, "port": db.port, "name": db.name, "username": db.username,
                     "local": db.host in LOCAL_HOSTS},
        "directories": {"ipc": uc.ipc_directory, "envoy": uc.envoy_directory, "logs": uc.log_directory},
        "scripts": hook_scripts(uc),
        "machine_types": {name: {"partition": mt.partition, "qos": mt.qos}
                          for name, mt in sorted(uc.machine_types.items())},
    }
