"""The energy capability: its cross-checks and its generated files (Slurm's acct_gather.conf; the controller's
configuration)."""

from __future__ import annotations

from bitten.core.capability import Capability
from bitten.core.files import FileSpec
from bitten.energy import config
from bitten.energy.checks import CHECKS
from bitten.site.model import Site


def _slurm_hosts(site: Site) -> list[str]:
    return site.slurm_hosts


def _controller_hosts(site: Site) -> list[str]:
    return site.energy_controller_hosts


CAPABILITY = Capability(
    name="energy",
    checks=CHECKS,
    files=(
        FileSpec("/etc/slurm/acct_gather.conf", _slurm_hosts, "slurm/acct_gather.conf.j2",
                 description="energy accounting plugin settings (bitten_energy.accounting: AcctGatherEnergyType)"),
        FileSpec(config.DEFAULT_PATH, _controller_hosts, render=config.render, per_host=True, mode="0640",
                 group="bitten-energy", description="energy controller: signals, policies, partitions, interlocks"),
    ),
)
