"""Pulumi program: the site's provider on UCloud/Core, with its refresh token and public key as secret outputs.

Config (``pulumi config set ...``, namespace ``ucloud``):
  inventory   the site's inventory, relative to this directory (default ../../inventory/<stack>)
  project     the UCloud project that owns the provider (Core's ``Project`` header)
  adminToken  a Core token allowed to create providers (secret: ``pulumi config set --secret ucloud:adminToken``);
              falls back to $BITTEN_UCLOUD_ADMIN_TOKEN
  caFile      CA bundle for Core's certificate (optional; default the system store)
  coreUrl     override bitten_ucloud.core_url (optional)
"""

from __future__ import annotations

from pathlib import Path

from program import build, settings_from_config

build(*settings_from_config(Path(__file__).resolve().parent))
