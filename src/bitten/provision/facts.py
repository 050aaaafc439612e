"""What the provisioner role reads from the model (lookup bitten_provision): one place, no restated defaults."""

from __future__ import annotations

from typing import Any

from bitten.provision.files import BOOT_SCRIPT, OVERLAY_FILES
from bitten.provision.nodes import HTTP_ROOT, STATE_DIR, TFTP_ROOT, boot_nodes, http_base, images_used, provisioner
from bitten.site.model import Site


def provisioner_facts(site: Site, host: str | None = None) -> dict[str, Any]:
    """The provisioner, its nodes and their images (the same for every host: ``host`` is not used)."""
    host = provisioner(site)
    if site.provision is None or host is None:
        return {"provisioner": None, "nodes": {}, "images": {}}
    nodes = {
        name: {"mac": n.mac, "ip": str(n.ip), "network": str(n.network), "profile": n.profile, "image": n.image,
               "image_id": n.image_id, "deploy": n.deploy, "disk": n.disk, "fqdn": n.fqdn,
               "boot_script": BOOT_SCRIPT.replace("{item}", name)}
        for name, n in boot_nodes(site).items()
    }
    images = {name: {"id": r.id, "hash": r.digest, "recipe": r.image.model_dump(mode="json")}
              for name, r in images_used(site).items()}
    return {
        "provisioner": host, "address": str(site.nodes[host].ip), "http_base": http_base(site),
        "http_port": site.provision.http_port, "http_root": HTTP_ROOT, "tftp_root": TFTP_ROOT,
        "state_dir": STATE_DIR, "interface": site.provision.network.interface, "nodes": nodes, "images": images,
        "overlay_files": list(OVERLAY_FILES), "boot_timeout_s": site.provision.boot_timeout_s,
    }
