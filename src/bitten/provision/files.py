"""The files provisioning generates, for `bitten render` and the provisioner role alike.

On the provisioner: dnsmasq's DHCP/TFTP config (one reservation per node, unknown MACs ignored), nginx's site, the
report service's node list, and one iPXE script per provisioned node. On each provisioned node (packed into its
identity overlay, which the node loads with the image): host name, network config, the admin keys, and what its
boot report says.
"""

from __future__ import annotations

import json

from bitten.core.files import FileSpec, SecretFn
from bitten.provision.nodes import HTTP_ROOT, boot_node_names, boot_nodes, http_base, provisioners
from bitten.site.model import Site

#: paths inside a node's identity overlay (what the node gets at first boot, before any playbook runs)
OVERLAY_FILES: tuple[str, ...] = ("/etc/hostname", "/etc/systemd/network/10-bitten.network",
                                  "/etc/bitten/node.json", "/root/.ssh/authorized_keys")
NODES_JSON = "/etc/bitten/provision/nodes.json"
BOOT_SCRIPT = f"{HTTP_ROOT}/nodes/{{item}}/boot.ipxe"


def _provisioners(site: Site) -> list[str]:
    return provisioners(site) if site.provision is not None else []


def _boot_nodes(site: Site) -> list[str]:
    return boot_node_names(site)


def _nodes_json(site: Site, host: str | None, secret: SecretFn) -> str:
    """The report service's list of the nodes it may hear from (and the image each one must run)."""
    nodes = {name: {"mac": n.mac, "ip": str(n.ip), "image_id": n.image_id, "deploy": n.deploy, "disk": n.disk}
             for name, n in boot_nodes(site).items()}
    return json.dumps({"nodes": nodes}, indent=1, sort_keys=True) + "\n"


def _node_json(site: Site, host: str | None, secret: SecretFn) -> str:
    """What a node reports when it is up, and where to."""
    assert host is not None
    node = boot_nodes(site)[host]
    data = {"name": node.name, "fqdn": node.fqdn, "image_id": node.image_id, "deploy": node.deploy,
            "disk": node.disk, "report_url": f"{http_base(site)}/report",
            "image_url": f"{http_base(site)}/images/{node.image}/{node.image_id}",
            "identity_url": f"{http_base(site)}/nodes/{node.name}/identity.cpio"}
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def _authorized_keys(site: Site, host: str | None, secret: SecretFn) -> str:
    keys = site.provision.admin_keys if site.provision else ()
    return "".join(f"{key}\n" for key in keys)


FILES: tuple[FileSpec, ...] = (
    FileSpec("/etc/dnsmasq.d/bitten-provision.conf", _provisioners, "provision/dnsmasq.conf.j2",
             description="DHCP (a reservation per node, unknown MACs ignored), TFTP for iPXE, router advertisements"),
    FileSpec("/etc/nginx/conf.d/bitten-provision.conf", _provisioners, "provision/nginx.conf.j2",
             description="HTTP for iPXE scripts, images and identity overlays (each only to its node); reports"),
    FileSpec(NODES_JSON, _provisioners, render=_nodes_json,
             description="the nodes the report service hears from, with the image each one must run"),
    FileSpec(BOOT_SCRIPT, _provisioners, "provision/boot.ipxe.j2", items=_boot_nodes,
             description="one iPXE script per provisioned node: its image, identity overlay and deploy mode"),
    FileSpec("/etc/hostname", _boot_nodes, "provision/hostname.j2", per_host=True,
             description="identity overlay: the node's host name"),
    FileSpec("/etc/systemd/network/10-bitten.network", _boot_nodes, "provision/network.j2", per_host=True,
             description="identity overlay: the node's address on the provisioning network (systemd-networkd)"),
    FileSpec("/etc/bitten/node.json", _boot_nodes, render=_node_json, per_host=True,
             description="identity overlay: the image the node runs and where it reports when it is up"),
    FileSpec("/root/.ssh/authorized_keys", _boot_nodes, render=_authorized_keys, mode="0600",
             description="identity overlay: the admin keys that may log in as root (bitten_provision.admin_keys)"),
)
