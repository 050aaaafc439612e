"""The provider on UCloud/Core, made to match the site: created once, adopted when it exists, updated in place.

Core has no way to delete a provider (its resource layer refuses it), so removing one is a task for UCloud's staff;
renaming a provider means a new provider. Pulumi's dynamic provider (stacks/ucloud) and the Ansible module
``bitten_ucloud_provider`` are thin front ends over this module.
"""

from __future__ import annotations

from dataclasses import dataclass

from bitten.site.model import Site
from bitten.ucloud.core import CoreClient, CoreConflict, CoreNotFound, Provider, ProviderSpec

#: spec fields Core can change in place; a different name is a different provider
UPDATABLE = ("domain", "port", "https")


@dataclass(frozen=True)
class RegistrationOutcome:
    provider: Provider
    #: "created", "adopted" (existed already, matched), "updated"
    action: str

    @property
    def changed(self) -> bool:
        return self.action in ("created", "updated")


def spec_from_site(site: Site) -> ProviderSpec:
    if site.ucloud is None:
        raise ValueError(f"site {site.info.name} sets no bitten_ucloud")
    uc = site.ucloud
    return ProviderSpec(name=uc.provider_id, domain=uc.public_host, port=uc.public_port, https=True)


def differences(current: ProviderSpec, wanted: ProviderSpec) -> list[str]:
    return [f for f in ("name", *UPDATABLE) if getattr(current, f) != getattr(wanted, f)]


def ensure(client: CoreClient, wanted: ProviderSpec, admin_token: str, project: str,
           *, check_only: bool = False) -> RegistrationOutcome:
    """Make the provider on Core match ``wanted``; with ``check_only`` report what would happen."""
    existing = client.find_provider(wanted.name, admin_token)
    if existing is None:
        if check_only:
            return RegistrationOutcome(Provider("", wanted, "", ""), "created")
        try:
            resource_id = client.create_provider(wanted, admin_token, project)
        except CoreConflict:
            # created meanwhile (or by a retried request): adopt it
            found = client.find_provider(wanted.name, admin_token)
            if found is None:
                raise
            resource_id = found.resource_id
        return RegistrationOutcome(client.retrieve_provider(resource_id, admin_token), "created")
    if not differences(existing.spec, wanted):
        return RegistrationOutcome(existing, "adopted")
    if check_only:
        return RegistrationOutcome(Provider(existing.resource_id, wanted, existing.refresh_token, existing.public_key),
                                   "updated")
    client.update_provider(existing.resource_id, wanted, admin_token)
    return RegistrationOutcome(client.retrieve_provider(existing.resource_id, admin_token), "updated")


def read(client: CoreClient, resource_id: str, admin_token: str) -> Provider | None:
    try:
        return client.retrieve_provider(resource_id, admin_token)
    except CoreNotFound:
        return None
