"""Which nodes bitten provisions, with what, and where the provisioner serves them.

A node is provisioned when its hardware profile has an entry in ``bitten_provision.profiles``; everything else
about its boot follows from the model: the reservation (boot MAC -> ``bitten_ip``, host name), the image and its
hash, stateless or disk, and the URLs its boot script loads.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from bitten.provision.recipe import Recipe
from bitten.site.model import GROUP_PROVISIONERS, Provision, ProvisionProfile, Site

#: the provisioner's HTTP root: iPXE scripts, images, overlays (nginx serves it; the role creates it)
HTTP_ROOT = "/srv/bitten/provision/http"
#: TFTP root: iPXE binaries for firmware that PXE-boots over TFTP (the nodes' UEFI on real hardware)
TFTP_ROOT = "/srv/bitten/provision/tftp"
#: where the provisioner keeps state (boot reports, DHCP events)
STATE_DIR = "/var/lib/bitten/provision"
#: the report service behind nginx (the nodes POST to /report, the boot stage GETs /status)
REPORT_LISTEN = ("127.0.0.1", 8787)


@dataclass(frozen=True)
class BootNode:
    """One provisioned node's boot, as the model determines it."""

    name: str
    fqdn: str
    mac: str
    ip: ipaddress.IPv4Address
    network: ipaddress.IPv4Network
    profile: str
    image: str
    #: ``<image>-<hash>`` of the image's recipe: what the node must report when it is up
    image_id: str
    deploy: str
    disk: str | None
    console: str | None
    kernel_args: tuple[str, ...]

    @property
    def prefix(self) -> str:
        return f"{self.ip}/{self.network.prefixlen}"


def provisioners(site: Site) -> list[str]:
    return site.hosts_in(GROUP_PROVISIONERS)


def provisioner(site: Site) -> str | None:
    """The host that serves DHCP/TFTP/HTTP (validation makes sure there is exactly one when provisioning is on)."""
    hosts = provisioners(site)
    return hosts[0] if site.provision is not None and hosts else None


def provision_profile(site: Site, host: str) -> ProvisionProfile | None:
    node = site.nodes.get(host)
    if site.provision is None or node is None or node.hardware_profile is None:
        return None
    return site.provision.profiles.get(node.hardware_profile)


def recipes(site: Site) -> dict[str, Recipe]:
    """Every image of the site, by name."""
    if site.provision is None:
        return {}
    return {name: Recipe(name, image) for name, image in sorted(site.provision.images.items())}


#: the last site's boot nodes (a Site is immutable; its templates ask once per node)
_last: tuple[Site, dict[str, BootNode]] | None = None


def boot_nodes(site: Site) -> dict[str, BootNode]:
    """The provisioned nodes, by name (sorted); empty when the site provisions nothing."""
    global _last
    if _last is None or _last[0] is not site:
        _last = (site, _boot_nodes(site))
    return _last[1]


def _boot_nodes(site: Site) -> dict[str, BootNode]:
    provision = site.provision
    if provision is None:
        return {}
    serving = set(provisioners(site))
    images = recipes(site)
    out: dict[str, BootNode] = {}
    for host in sorted(site.nodes):
        node = site.nodes[host]
        profile = provision_profile(site, host)
        if profile is None or host in serving or node.boot_mac is None or profile.image not in images:
            continue
        out[host] = BootNode(
            name=host, fqdn=site.fqdn(host), mac=node.boot_mac, ip=node.ip, network=provision.network.subnet,
            profile=str(node.hardware_profile), image=profile.image, image_id=images[profile.image].id,
            deploy=profile.deploy, disk=profile.disk, console=profile.console, kernel_args=profile.kernel_args,
        )
    return out


def boot_node_names(site: Site) -> list[str]:
    return list(boot_nodes(site))


def http_base(site: Site) -> str:
    """http://<provisioner>:<port> as the nodes reach it (the provisioner's address on the provisioning network)."""
    host = provisioner(site)
    provision = _require(site)
    if host is None:
        raise ValueError("no provisioner: put one host in group provisioners")
    port = "" if provision.http_port == 80 else f":{provision.http_port}"
    return f"http://{site.nodes[host].ip}{port}"


def images_used(site: Site) -> dict[str, Recipe]:
    """The images some provisioned node boots, by name."""
    used = {n.image for n in boot_nodes(site).values()}
    return {name: recipe for name, recipe in recipes(site).items() if name in used}


def _require(site: Site) -> Provision:
    if site.provision is None:
        raise ValueError("the site sets no bitten_provision")
    return site.provision
