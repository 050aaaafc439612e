"""What the cooling playbook and the cooling_agent role need from the site model (lookup ``bitten_facts``,
'cooling'): which hosts run the agent, where its config and state live, how it runs scontrol."""

from __future__ import annotations

from typing import Any

from bitten.site.model import Site

#: the agent's configuration file (its FileSpec in bitten.cooling.capability)
CONFIG_PATH = "/etc/bitten/cooling/agent.yaml"


def facts(site: Site, host: str) -> dict[str, Any]:
    agent = site.cooling.agent
    hosts = site.cooling_agent_hosts
    return {
        "agent": host in hosts,
        "agent_hosts": hosts,
        "config_path": CONFIG_PATH,
        "state_dir": agent.state_dir,
        "port": agent.port,
        "listen": str(agent.listen or site.nodes[host].ip),
        #: how the agent reads node states (unprivileged) and its privileged helper's fixed command (sudo)
        "scontrol": list(agent.scontrol),
        "helper": list(agent.helper),
        "slurm_actions": agent.slurm_actions,
    }
