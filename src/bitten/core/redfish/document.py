"""Reading Redfish documents: the link at a path of keys, the members of a collection."""

from __future__ import annotations

from typing import Any


def link(body: Any, *keys: str) -> str | None:
    """The ``@odata.id`` at ``keys`` in a Redfish document (the first one of a list), or None."""
    value: Any = body
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("@odata.id")
    return value if isinstance(value, str) and value else None


def members(body: Any) -> list[str]:
    """The member paths of a Redfish collection."""
    found = body.get("Members", []) if isinstance(body, dict) else []
    return [m["@odata.id"] for m in found if isinstance(m, dict) and isinstance(m.get("@odata.id"), str)]
