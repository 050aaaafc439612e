"""The UCloud capability: its cross-checks and the Integration Module's /etc/ucloud files."""

from __future__ import annotations

from bitten.core.capability import Capability
from bitten.core.files import FileSpec, Renderer, SecretFn
from bitten.site.model import GROUP_UCLOUD, Site
from bitten.ucloud import imconfig
from bitten.ucloud.checks import check_ucloud

_HEADERS = {
    "config": "# /etc/ucloud/config.yml: the Integration Module's provider and services (Slurm machine types, "
              "file systems, identity).",
    "server": "# /etc/ucloud/server.yml: the refresh token from UCloud/Core and the IM's database (secrets: "
              "placeholders in review output).",
    "secrets": "# /etc/ucloud/secrets.yml: secret settings of identity management (FreeIPA); empty when there are "
               "none.",
}


def _im_file(which: str) -> Renderer:
    def render(site: Site, host: str | None, secret: SecretFn) -> str:
        return (f"{_HEADERS[which]}\n# Managed by bitten from the {site.info.name} inventory (bitten_ucloud): edit "
                f"the inventory, not this file.\n{imconfig.render(site, which, secret).rstrip()}\n")

    return render


def frontends(site: Site) -> list[str]:
    return site.hosts_in(GROUP_UCLOUD) if site.ucloud is not None else []


CAPABILITY = Capability(
    name="ucloud",
    checks=(check_ucloud,),
    files=(
        # config.yml is read by every user's IM instance, so it is world-readable
        FileSpec("/etc/ucloud/config.yml", frontends, render=_im_file("config"), mode="0644", owner="ucloud",
                 group="ucloud", description="UCloud IM: provider, Slurm machine types, file systems"),
        FileSpec("/etc/ucloud/server.yml", frontends, render=_im_file("server"), mode="0600", owner="ucloud",
                 group="ucloud", description="UCloud IM: refresh token and database (secrets)"),
        FileSpec("/etc/ucloud/secrets.yml", frontends, render=_im_file("secrets"), mode="0600", owner="ucloud",
                 group="ucloud", description="UCloud IM: identity-management secrets"),
    ),
)
