"""What the energy playbook and the energy_controller role need from the site model (lookup ``bitten_facts``,
'energy'): which hosts run the controller, which GPU nodes it caps, where its config and state live."""

from __future__ import annotations

from typing import Any

from bitten.energy import config
from bitten.site.model import Site


def facts(site: Site, host: str) -> dict[str, Any]:
    hosts = site.energy_controller_hosts
    return {
        "controller": host in hosts,
        "controller_hosts": hosts,
        #: the GPU nodes whose power limits the controller sets (each gets the controller's key)
        "gpu_hosts": [node for node in site.compute_nodes
                      if (profile := site.profile_of(node)) is not None and profile.gpu is not None] if hosts else [],
        "config_path": config.DEFAULT_PATH,
        "state_dir": site.energy.controller.state_dir,
    }
