"""What the hardware role needs from the site model (lookup ``bitten_facts``, 'hardware'): each node's BMC and
the BMC state its hardware profile asks for. A node without a BMC or a profile is not managed."""

from __future__ import annotations

from typing import Any

from bitten.hardware.plan import DesiredBmcState
from bitten.site.model import Site


def facts(site: Site, host: str) -> dict[str, Any]:
    node = site.nodes[host]
    profile = site.profile_of(host)
    if node.bmc is None or profile is None:
        return {"managed": False, "why": "no bitten_bmc" if node.bmc is None else "no hardware profile"}
    desired = DesiredBmcState.from_profile(profile, node.boot_mac)
    return {"managed": True, "bmc": node.bmc.model_dump(), **desired.as_dict()}
