"""What a capability contributes to the site: its cross-checks, its generated files, its derived values for the
roles, and its template filters. Each capability declares one ``CAPABILITY`` in ``bitten/<name>/capability.py``;
bitten.capabilities composes them (the only module that knows the list)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bitten.core.files import FileSpec
from bitten.site.checks import Check
from bitten.site.model import Site

#: derived values a role reads through the lookup ``bitten_facts``: (site, host) -> mapping
Facts = Callable[[Site, str], Mapping[str, Any]]


@dataclass(frozen=True)
class Capability:
    name: str
    #: cross-checks run by `bitten validate` and before any play acts (after the site's own checks)
    checks: tuple[Check, ...] = ()
    #: every file a role writes from site data
    files: tuple[FileSpec, ...] = ()
    #: values derived from the model that roles need (never restated in role defaults)
    facts: Facts | None = None
    #: Jinja filters its templates use (also offered to roles as ``bitten_<name>``)
    filters: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
