"""Is the site registered on UCloud/Core? Every product the site defines must be there, as the site defines it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bitten.site.model import Site
from bitten.ucloud import imconfig
from bitten.ucloud.core import CoreClient
from bitten.ucloud.im.products import product_key

#: product fields compared between the site and Core
COMPARED = ("cpu", "memoryInGigs", "gpu", "price", "productType")
#: category fields compared
COMPARED_CATEGORY = ("accountingUnit", "accountingFrequency", "freeToUse")


@dataclass
class CheckResult:
    provider: str
    expected: list[dict[str, Any]]
    registered: list[dict[str, Any]]
    missing: list[tuple[str, str]] = field(default_factory=list)
    #: (category, name) -> differing field -> (site, core)
    different: dict[tuple[str, str], dict[str, tuple[Any, Any]]] = field(default_factory=dict)
    #: on Core but not in the site (reported, not a failure: products cannot be removed from Core)
    extra: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.different


def compare(provider: str, expected: list[dict[str, Any]], registered: list[dict[str, Any]]) -> CheckResult:
    result = CheckResult(provider, expected, registered)
    on_core = {product_key(p): p for p in registered}
    wanted = {product_key(p): p for p in expected}
    for key, product in wanted.items():
        found = on_core.get(key)
        if found is None:
            result.missing.append(key)
            continue
        diff = {f: (product.get(f, 0), found.get(f, 0)) for f in COMPARED if product.get(f, 0) != found.get(f, 0)}
        for f in COMPARED_CATEGORY:
            mine, theirs = product["category"].get(f), found.get("category", {}).get(f)
            if mine != theirs:
                diff[f"category.{f}"] = (mine, theirs)
        if diff:
            result.different[key] = diff
    result.extra = sorted(k for k in on_core if k not in wanted)
    return result


def check_site(site: Site, client: CoreClient, refresh_token: str) -> CheckResult:
    """Refresh an access token with the provider's refresh token, then compare the site's products with Core's."""
    if site.ucloud is None:
        raise ValueError(f"site {site.info.name} sets no bitten_ucloud")
    provider = site.ucloud.provider_id
    token = client.refresh(refresh_token)
    return compare(provider, imconfig.expected_products(site), client.browse_products(provider, token=token))
