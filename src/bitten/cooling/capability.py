"""The cooling capability: its cross-checks and the cooling agent's configuration file."""

from __future__ import annotations

from bitten.cooling import config
from bitten.cooling.checks import check_cooling
from bitten.core.capability import Capability
from bitten.core.files import FileSpec
from bitten.site.model import Site


def _agent_hosts(site: Site) -> list[str]:
    return site.cooling_agent_hosts


CAPABILITY = Capability(
    name="cooling",
    checks=(check_cooling,),
    files=(
        FileSpec("/etc/bitten/cooling/agent.yaml", _agent_hosts, render=config.render, per_host=True, mode="0640",
                 group="bitten-cooling", description="cooling agent: CDUs, meters, register maps, loops, ledger"),
        FileSpec("/etc/bitten/cooling/allowed.json", _agent_hosts, render=config.render_allowed, mode="0644",
                 description="cooling agent's privileged helper: the nodes it may drain, resume and cap"),
    ),
)
