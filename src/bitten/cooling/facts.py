"""What the cooling playbook and the cooling_agent role need from the site model (lookup ``bitten_facts``,
'cooling'): which hosts run the agent, where its config and state live, how it runs scontrol."""

from __future__ import annotations

from typing import Any

from bitten.site.model import Site

#: the agent's configuration file (its FileSpec in bitten.cooling.capability)
CONFIG_PATH = "/etc/bitten/cooling/agent.yaml"


def facts(site: Site, host: str) -> dict[str, Any]:
    agent = site.cooling.agent
    argv = list(agent.scontrol)
    sudo = bool(argv) and argv[0].rsplit("/", 1)[-1] == "sudo"
    program = next((arg for arg in argv[1:] if not arg.startswith("-")), "") if sudo else (argv[0] if argv else "")
    hosts = site.cooling_agent_hosts
    return {
        "agent": host in hosts,
        "agent_hosts": hosts,
        "config_path": CONFIG_PATH,
        "state_dir": agent.state_dir,
        "port": agent.port,
        "listen": str(agent.listen or site.nodes[host].ip),
        #: the agent runs scontrol through sudo (the role then allows exactly that program, and only
        #: show/drain/resume)
        "scontrol_sudo": sudo,
        "scontrol_path": program,
        "slurm_actions": agent.slurm_actions,
    }
