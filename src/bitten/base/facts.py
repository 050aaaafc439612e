"""What the base role needs from the site model (lookup ``bitten_facts``, 'base')."""

from __future__ import annotations

from typing import Any

from bitten.site.model import Site


def facts(site: Site, host: str) -> dict[str, Any]:
    return {
        "hostname": host,
        "fqdn": site.fqdn(host),
        "domain": site.info.domain,
        "ip": str(site.nodes[host].ip),
        "timezone": site.info.timezone,
    }
