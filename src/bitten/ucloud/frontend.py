"""The frontend around the Integration Module: which ports stay internal and who may reach them, for the nginx
site and the nftables ruleset bitten generates (templates/ucloud/)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from bitten.site import model as m

#: the IM's own fixed ports (the IM has no setting for them): its Prometheus metrics, and the range the IM server
#: and the users' IM instances listen in
METRICS_PORT = 7867
INSTANCE_PORTS = "42000-65535"


@dataclass(frozen=True)
class Firewall:
    #: ports only trusted sources may reach: metrics, envoy's plain-HTTP gateway, the IM server and instances
    internal_ports: tuple[str, ...]
    trusted_v4: tuple[str, ...]
    trusted_v6: tuple[str, ...]
    public_port: int


def firewall(site: m.Site) -> Firewall:
    uc = site.ucloud
    if uc is None:
        raise ValueError(f"site {site.info.name} sets no bitten_ucloud")
    if uc.trusted_sources:
        networks = list(uc.trusted_sources)
    else:
        networks = [ipaddress.ip_network(node.ip) for _, node in sorted(site.nodes.items())]
    v4 = sorted({n for n in networks if n.version == 4}, key=lambda n: (int(n.network_address), n.prefixlen))
    v6 = sorted({n for n in networks if n.version == 6}, key=lambda n: (int(n.network_address), n.prefixlen))

    def text(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
        return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)

    return Firewall(internal_ports=(str(METRICS_PORT), str(uc.gateway_port), INSTANCE_PORTS),
                    trusted_v4=tuple(text(n) for n in v4), trusted_v6=tuple(text(n) for n in v6),
                    public_port=uc.public_port)
