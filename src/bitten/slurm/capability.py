"""The Slurm capability: its cross-checks, the cluster-wide Slurm files, and the filters its templates use."""

from __future__ import annotations

from typing import Any

from bitten.core.capability import Capability
from bitten.core.files import FileSpec
from bitten.site.model import Site
from bitten.slurm.checks import check_accounts, check_partitions, check_slurm_roles
from bitten.slurm.conf import tres_weights


def _slurm_hosts(site: Site) -> list[str]:
    return site.slurm_hosts


def _dbd_hosts(site: Site) -> list[str]:
    return site.dbd_hosts


def _plugstack_hosts(site: Site) -> list[str]:
    return site.slurm_hosts if site.slurm.containers.enabled else []


def config_files(site: Site) -> list[str]:
    """The /etc/slurm files every Slurm host gets (slurmdbd.conf aside): the slurm role writes these."""
    files = ["/etc/slurm/slurm.conf", "/etc/slurm/gres.conf", "/etc/slurm/cgroup.conf"]
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
    checks=(check_slurm_roles, check_partitions, check_accounts),
    files=(
        FileSpec("/etc/slurm/slurm.conf", _slurm_hosts, "slurm/slurm.conf.j2", description="Slurm cluster config"),
        FileSpec("/etc/slurm/gres.conf", _slurm_hosts, "slurm/gres.conf.j2", description="GPUs per node"),
        FileSpec("/etc/slurm/cgroup.conf", _slurm_hosts, "slurm/cgroup.conf.j2", description="cgroup limits"),
        FileSpec("/etc/slurm/plugstack.conf", _plugstack_hosts, "slurm/plugstack.conf.j2",
                 description="SPANK plugins: pyxis for container jobs"),
        FileSpec("/etc/slurm/slurmdbd.conf", _dbd_hosts, "slurm/slurmdbd.conf.j2", mode="0600", owner="slurm",
                 group="slurm", description="accounting daemon; StoragePass is a secret (placeholder in render)"),
    ),
    facts=_facts,
    filters={"tres_weights": tres_weights},
)
