"""What the roles need to know about Slurm, derived from the site model (lookup ``bitten_facts``, 'slurm').

The roles never restate these: who runs which daemon, which files each host gets, where accounting keeps its
database and whether the accounting host runs that database itself.
"""

from __future__ import annotations

from typing import Any

from bitten.site.model import GROUP_LOGIN, GROUP_UCLOUD, Site

#: the database server is the accounting host's own MariaDB
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def facts(site: Site, host: str) -> dict[str, Any]:
    db = site.slurm.database
    controller = host in site.controllers
    dbd = host in site.dbd_hosts
    compute = host in site.compute_nodes
    client = host in site.hosts_in(GROUP_LOGIN, GROUP_UCLOUD)
    return {
        "cluster_name": site.slurm.cluster_name,
        "controllers": site.controllers,
        "dbd_hosts": site.dbd_hosts,
        #: the host that registers the cluster and applies QoS and accounts (the first slurmdbd host)
        "accounting_host": site.dbd_hosts[0] if site.dbd_hosts else None,
        "controller": controller,
        "dbd": dbd,
        "compute": compute,
        "client": client,
        #: the host has a part in Slurm (and gets slurm.conf)
        "member": host in site.slurm_hosts,
        "database": {"host": db.host, "port": db.port, "name": db.name, "user": db.user,
                     "local": db.host in LOCAL_HOSTS},
        "gres_autodetect": site.slurm.gres_autodetect,
    }
