"""The Slurm capability: its cross-checks, the cluster-wide Slurm files, and the filters its templates use."""

from __future__ import annotations

import shlex
from typing import Any

from bitten.core.capability import Capability
from bitten.core.files import FileSpec, SecretFn
from bitten.site.model import Site
from bitten.slurm.accounting import AccountingState, desired_from_site, plan
from bitten.slurm.checks import check_accounts, check_partitions, check_qos, check_slurm_roles
from bitten.slurm.conf import tres_weights
from bitten.slurm.memory import memory_defaults


def _slurm_hosts(site: Site) -> list[str]:
    return site.slurm_hosts


def _dbd_hosts(site: Site) -> list[str]:
    return site.dbd_hosts


def _accounting(site: Site, host: str | None, secret: SecretFn) -> str:
    """The sacctmgr commands that give an empty slurmdbd the inventory's cluster, QoS (with their limits) and
    accounts: what the accounting step converges to, one line per object, so a limit change is a one-line diff."""
    commands = plan(desired_from_site(site), AccountingState())
    return (f"# Slurm accounting of cluster {site.slurm.cluster_name}, from the {site.info.name} inventory "
            "(bitten_qos, bitten_accounts): the sacctmgr commands that create it on an empty slurmdbd.\n# Review "
            "only: the slurm role's accounting step applies the difference to what slurmdbd holds.\n"
            + "".join(shlex.join(command) + "\n" for command in commands))


def _plugstack_hosts(site: Site) -> list[str]:
    return site.slurm_hosts if site.slurm.containers.enabled else []


def config_files(site: Site) -> list[str]:
    """The /etc/slurm files every Slurm host gets (slurmdbd.conf aside): the slurm role writes these."""
    # acct_gather.conf is the energy capability's (bitten_energy.accounting), on every Slurm host
    files = ["/etc/slurm/slurm.conf", "/etc/slurm/gres.conf", "/etc/slurm/cgroup.conf", "/etc/slurm/acct_gather.conf"]
    if site.fabric is not None and site.fabric.slurm.plugin != "none":
        files.append("/etc/slurm/topology.conf")  # the fabric capability renders it
    if site.slurm.containers.enabled:
        files.append("/etc/slurm/plugstack.conf")
    return files


def _facts(site: Site, host: str) -> dict[str, Any]:
    """What the slurm role needs from the model: where slurmctld keeps its state, who controls in which order."""
    return {"state_save_location": site.slurm.state_save_location, "controllers": site.controllers,
            "slurmctld_timeout": site.slurm.slurmctld_timeout, "config_files": config_files(site)}


CAPABILITY = Capability(
    name="slurm",
    checks=(check_slurm_roles, check_partitions, check_qos, check_accounts),
    files=(
        FileSpec("/etc/slurm/slurm.conf", _slurm_hosts, "slurm/slurm.conf.j2", description="Slurm cluster config"),
        FileSpec("/etc/slurm/gres.conf", _slurm_hosts, "slurm/gres.conf.j2", description="GPUs per node"),
        FileSpec("/etc/slurm/cgroup.conf", _slurm_hosts, "slurm/cgroup.conf.j2", description="cgroup limits"),
        FileSpec("/etc/slurm/plugstack.conf", _plugstack_hosts, "slurm/plugstack.conf.j2",
                 description="SPANK plugins: pyxis for container jobs"),
        FileSpec("/etc/slurm/slurmdbd.conf", _dbd_hosts, "slurm/slurmdbd.conf.j2", mode="0600", owner="slurm",
                 group="slurm", description="accounting daemon; StoragePass is a secret (placeholder in render)"),
        FileSpec("/etc/slurm/accounting.sacctmgr", _dbd_hosts, render=_accounting, review_only=True,
                 description="QoS, limits and accounts as sacctmgr commands (review only)"),
    ),
    facts=_facts,
    filters={"tres_weights": tres_weights, "memory_defaults": memory_defaults},
)
