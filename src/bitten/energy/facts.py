"""What the energy playbook and the energy_controller role need from the site model (lookup ``bitten_facts``,
'energy'): which hosts run the controller, which GPU nodes it caps, where its config and state live."""

from __future__ import annotations

from typing import Any

from bitten.energy import config
from bitten.site.model import GROUP_LOGIN, Site


def statements_url(site: Site) -> str | None:
    """Where the login nodes' bitten-energy-jobs asks (the first controller's statements), or None."""
    hosts = site.energy_controller_hosts
    ctl = site.energy.controller
    if not hosts or ctl.statements_port is None:
        return None
    address = str(ctl.listen) if ctl.listen else str(site.nodes[hosts[0]].ip)
    return f"http://{address}:{ctl.statements_port}/v1/jobs"


def facts(site: Site, host: str) -> dict[str, Any]:
    hosts = site.energy_controller_hosts
    url = statements_url(site)
    return {
        "controller": host in hosts,
        "controller_hosts": hosts,
        #: the GPU nodes whose power limits the controller sets (each gets the controller's key)
        "gpu_hosts": [node for node in site.compute_nodes
                      if (profile := site.profile_of(node)) is not None and profile.gpu is not None] if hosts else [],
        "config_path": config.DEFAULT_PATH,
        "state_dir": site.energy.controller.state_dir,
        #: the controller reads the cooling agent's ledger for the users' statements (the agent runs here too)
        "reads_agent_ledger": host in hosts and url is not None and host in site.cooling_agent_hosts,
        #: login nodes get bitten-energy-jobs, which asks the controller's statements here
        "statements_url": url if host in site.hosts_in(GROUP_LOGIN) else None,
    }
