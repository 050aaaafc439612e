"""The site model's building blocks: the strict base of every section, the name types, and ``Section``, which says
how a site-wide inventory variable becomes a part of the Site and which names it declares."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

DnsLabel = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", min_length=1, max_length=63)
]
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", min_length=1, max_length=64)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


#: the names a section declares, read from its raw value (valid or not): raw -> names
Declares = Callable[[Any], set[str]]


def keys(*path: str) -> Declares:
    """The keys of the mapping at ``path`` inside the raw value (``keys()``: of the value itself)."""

    def declared(raw: Any) -> set[str]:
        for part in path:
            raw = raw.get(part) if isinstance(raw, Mapping) else None
        return {str(k) for k in raw} if isinstance(raw, Mapping) else set()

    return declared


def names(key: str = "name") -> Declares:
    """The ``name`` of every item of a raw list."""

    def declared(raw: Any) -> set[str]:
        if not isinstance(raw, list):
            return set()
        return {str(item.get(key)) for item in raw if isinstance(item, Mapping) and item.get(key) is not None}

    return declared


def items(key: str) -> Declares:
    """The strings listed under ``key`` by every item of a raw list (e.g. the groups of every partition)."""

    def declared(raw: Any) -> set[str]:
        if not isinstance(raw, list):
            return set()
        out: set[str] = set()
        for item in raw:
            listed = item.get(key) if isinstance(item, Mapping) else None
            if isinstance(listed, list | tuple):
                out.update(str(i) for i in listed)
        return out

    return declared


@dataclass(frozen=True)
class Section:
    """A site-wide inventory variable (the same value on every host, normally in group_vars/all).

    ``shape`` says how it validates: ``one`` model, a ``mapping`` of name -> model or a ``list`` of models (each
    entry validated on its own, so one bad entry does not hide the others). ``declares`` names the kinds of name the
    section defines (``qos``, ``cdus``, ...) and how to read them from the raw value, valid or not: cross-checks
    ask whether a name is declared, so a name whose definition is only invalid is not reported as missing too.
    """

    #: the inventory variable, e.g. bitten_cooling
    var: str
    #: the Site field it fills
    field: str
    #: the model of the value (of each entry for mapping and list)
    model: Any
    description: str
    shape: Literal["one", "mapping", "list"] = "one"
    required: bool = False
    #: raw value used when the variable is absent (None: the Site field's default)
    default: Any = None
    #: for a required section that is invalid: the fields of the stand-in the cross-checks see
    stand_in: Mapping[str, Any] | None = None
    declares: Mapping[str, Declares] = dataclasses.field(default_factory=dict)
