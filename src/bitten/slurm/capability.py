"""The Slurm capability: its cross-checks, the cluster-wide Slurm files, and the filters its templates use."""

from __future__ import annotations

from bitten.core.capability import Capability
from bitten.core.files import FileSpec
from bitten.site.model import Site
from bitten.slurm.checks import check_accounts, check_partitions, check_slurm_roles
from bitten.slurm.conf import tres_weights


def _slurm_hosts(site: Site) -> list[str]:
    return site.slurm_hosts


def _dbd_hosts(site: Site) -> list[str]:
    return site.dbd_hosts


CAPABILITY = Capability(
    name="slurm",
    checks=(check_slurm_roles, check_partitions, check_accounts),
    files=(
        FileSpec("/etc/slurm/slurm.conf", _slurm_hosts, "slurm/slurm.conf.j2", description="Slurm cluster config"),
        FileSpec("/etc/slurm/gres.conf", _slurm_hosts, "slurm/gres.conf.j2", description="GPUs per node"),
        FileSpec("/etc/slurm/cgroup.conf", _slurm_hosts, "slurm/cgroup.conf.j2", description="cgroup limits"),
        FileSpec("/etc/slurm/slurmdbd.conf", _dbd_hosts, "slurm/slurmdbd.conf.j2", mode="0600", owner="slurm",
                 group="slurm", description="accounting daemon; StoragePass is a secret (placeholder in render)"),
    ),
    filters={"tres_weights": tres_weights},
)
