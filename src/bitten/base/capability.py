"""The base capability: /etc/hosts from the inventory (never from facts gathered on every host)."""

from __future__ import annotations

from bitten.core.capability import Capability
from bitten.core.files import FileSpec
from bitten.site.model import Site


def _all_hosts(site: Site) -> list[str]:
    return sorted(site.nodes)


CAPABILITY = Capability(
    name="base",
    files=(FileSpec("/etc/hosts", _all_hosts, "base/hosts.j2",
                    description="every host of the site, from the inventory"),),
)
