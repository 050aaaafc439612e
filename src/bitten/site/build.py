"""Turn inventory variables into the typed Site model, collecting every problem before giving up."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, TypeVar, cast, get_args

from pydantic import BaseModel, TypeAdapter, ValidationError, create_model

from bitten.site import model as m
from bitten.site.checks import Check, run_checks
from bitten.site.inventory import InventoryData, collector_paused
from bitten.site.locate import Locator
from bitten.site.model.values import suggest
from bitten.site.problems import Problem, SiteError, is_vaulted

T = TypeVar("T")


def _loc(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_FIXES = {
    "missing": "add it",
    "extra_forbidden": "remove it or correct its spelling",
    "string_pattern_mismatch": "use lower-case letters, digits and '-' (or the documented form)",
    "ip_v4_address": "give a dotted IPv4 address such as 10.10.1.1",
}


def validate_into(
    model: type[T], raw: Any, *, var: str, host: str | None, locator: Locator, problems: list[Problem],
    prefix: Sequence[str | int] = (),
) -> T | None:
    """Validate ``raw`` as ``model``; on failure record one Problem per error (with file and line)."""
    try:
        if isinstance(model, type) and issubclass(model, BaseModel):
            return model.model_validate(raw)
        return cast(T, _adapter(cast(Any, model)).validate_python(raw))
    except ValidationError as exc:
        for err in exc.errors():
            path = [*prefix, *err["loc"]]
            msg, fix = describe(err, model, f"see the {var} reference in inventory/README.md")
            problems.append(Problem(file=locator.find(host, var, path), host=host, field=_loc([var, *path]),
                                    message=msg, fix=fix))
        return None


def describe(err: Any, model: Any, fix: str) -> tuple[str, str]:
    """Message and fix for one pydantic error: the value shown (never a vaulted one), a near-miss for an unknown
    key or enum value."""
    value = err.get("input")
    msg = str(err["msg"]).removeprefix("Value error, ")
    kind = err["type"]
    fix = _FIXES.get(kind, fix)
    if is_vaulted(value):
        # the message of a parser may quote the value: a vaulted one is a secret
        msg = msg.replace(repr(str(value)), "<vaulted value>").replace(str(value), "<vaulted value>")
    elif kind not in ("missing",) and not isinstance(value, dict | list) and repr(value) not in msg:
        msg += f" (got {value!r})"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
        hint = suggest(str(value), choices) if isinstance(value, str) and not is_vaulted(value) else ""
        if hint:
            fix = f"use {hint.strip(' ()')}"
    elif kind == "extra_forbidden" and err["loc"]:
        hint = suggest(str(err["loc"][-1]), _fields_at(model, err["loc"][:-1]))
        if hint:
            fix = f"correct its spelling: {hint.strip(' ()')}"
    return msg, fix


def _fields_at(model: Any, loc: Sequence[str | int]) -> list[str]:
    """Field names of the model that ``loc`` points into (keys and indexes of containers are skipped)."""
    current = model
    for part in loc:
        fields = getattr(current, "model_fields", None)
        if isinstance(part, str) and fields and part in fields:
            current = _model_in(fields[part].annotation) or current
    fields = getattr(current, "model_fields", None) or {}
    return [*fields, *(f.alias for f in fields.values() if f.alias)]


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


@cache
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


def _same(a: Any, b: Any) -> bool:
    return a is b or a == b


@collector_paused()
def build_site(data: InventoryData, checks: Sequence[Check] = ()) -> m.Site:
    """Validate inventory variables into a Site, or raise SiteError listing every problem.

    The site's own checks always run; ``checks`` are the capabilities' cross-checks (bitten.capabilities).
    """
    problems: list[Problem] = list(data.problems)
    hosts = sorted(data.hostvars)
    reference = hosts[0] if hosts else None
    locator = Locator(data, reference)
    source = data.sources[0] if data.sources else "?"

    if not hosts:
        raise SiteError([Problem(file=source, message="the inventory has no hosts",
                                 fix="list the site's hosts in hosts.yml")])

    # unknown bitten_* variables are typos until proven otherwise;
    # site-wide variables come from the sections of the model (bitten.site.model.SECTIONS), per-host ones from Node
    sections = {section.var: section for section in m.SECTIONS}
    known = sections.keys() | m.HOST_VARS.keys()
    seen_unknown: set[tuple[str, str]] = set()
    for host in hosts:
        if not data.hostvars[host].keys() - known:  # the usual case, decided without a loop per variable
            continue
        for var in data.hostvars[host]:
            if var not in known:
                where = locator.find(host, var)
                if (where, var) not in seen_unknown:
                    seen_unknown.add((where, var))
                    hint = suggest(var, known)
                    problems.append(Problem(file=where, host=host, field=var, message="unknown site variable",
                                            fix=f"correct its spelling: {hint.strip(' ()')}" if hint
                                            else "one of: " + ", ".join(sorted(known))))

    # site-wide variables must agree on every host; one that failed to template on some host is invalid
    invalid: set[str] = {var if var in sections else f"{var}@{host}" for host, var in data.invalid}
    hostvars = [data.hostvars[host] for host in hosts]
    site_raw: dict[str, Any] = {}
    for var in sections:
        value = data.hostvars[reference].get(var) if reference else None
        site_raw[var] = value
        if var in invalid:
            site_raw[var] = None
            continue
        seen = [hv.get(var) for hv in hostvars]
        if seen.count(value) == len(seen):  # count compares by identity first, then ==: _same for every host
            continue
        for host, other in zip(hosts, seen, strict=True):
            if not _same(value, other):
                problems.append(Problem(
                    file=locator.find(host, var), host=host, field=var,
                    message="site-wide variable differs from the value other hosts see",
                    fix="set site-wide variables once, in group_vars/all"))
                break
    for var, section in sections.items():
        if section.required and site_raw[var] is None and var not in invalid:
            problems.append(Problem(file=source, field=var, message=f"required: {section.description}",
                                    fix=f"define {var} in group_vars/all (see inventory/README.md)"))

    values: dict[str, Any] = {}
    stand_ins: dict[str, Any] = {}
    for section in sections.values():
        before = len(problems)
        value = _validate_section(section, site_raw.get(section.var), locator, problems)
        if len(problems) > before:
            invalid.add(section.var)
        if value is not None:
            values[section.field] = value
        elif section.stand_in is not None:
            stand_ins[section.field] = section.model.model_construct(**section.stand_in)

    groups = {g: tuple(sorted(h)) for g, h in data.groups.items() if g not in ("all", "ungrouped")}
    member_of: dict[str, list[str]] = {host: [] for host in hosts}
    for group, members in sorted(groups.items()):
        for host in members:
            member_of.setdefault(host, []).append(group)
    nodes: dict[str, m.Node] = {}
    partial: dict[str, m.Node] = {}
    for host in hosts:
        hv = data.hostvars[host]
        raw_node: dict[str, Any] = {"name": host, "groups": tuple(member_of[host])}
        raw_node.update({field: hv.get(var) for var, (field, _description) in m.HOST_VARS.items()})
        node, failed = _validate_node(raw_node, host, locator, problems,
                                      skip={var for var in m.HOST_VARS if f"{var}@{host}" in invalid})
        invalid.update(f"{var}@{host}" for var in failed)
        if node is not None:
            nodes[host] = node
        else:
            partial[host] = _partial_node(raw_node, failed)

    # Cross-check everything, so that one run reports every problem. Names that are declared but invalid count as
    # declared, and a node with an invalid field takes part with its valid ones (its own errors are reported
    # already; declared["invalid"] names what failed, so that no check reports a follow-on of it).
    declared = _declared(site_raw)
    declared["invalid"] = invalid
    site = m.Site.model_construct(nodes={**nodes, **partial}, groups=groups, **{**values, **stand_ins})
    problems.extend(run_checks(site, locator, declared, checks))
    if problems:
        raise SiteError(problems)
    return m.Site(nodes=nodes, groups=groups, **values)


def _validate_section(section: m.Section, raw: Any, locator: Locator, problems: list[Problem]) -> Any:
    """A section's value (None when absent without a default, or invalid as a whole); entries of a mapping or list
    are validated one by one, so that the valid ones take part in the cross-checks."""
    if raw is None:
        raw = section.default
    if raw is None:
        return {} if section.shape == "mapping" else () if section.shape == "list" else None
    if section.shape == "mapping":
        return _mapping_of(section.model, raw, section.var, locator, problems)
    if section.shape == "list":
        return tuple(_list_of(section.model, raw, section.var, locator, problems))
    return validate_into(section.model, raw, var=section.var, host=None, locator=locator, problems=problems)


def _declared(site_raw: Mapping[str, Any]) -> dict[str, set[str]]:
    """Names each site-wide section declares, valid or not (each section says which: Section.declares)."""
    declared: dict[str, set[str]] = {kind: set() for section in m.SECTIONS for kind in section.declares}
    for section in m.SECTIONS:
        for kind, read in section.declares.items():
            declared.setdefault(kind, set()).update(read(site_raw.get(section.var)))
    return declared


#: Node field -> the host variable it comes from
_NODE_VAR = {field: var for var, (field, _description) in m.HOST_VARS.items()}


def _validate_node(raw: dict[str, Any], host: str, locator: Locator, problems: list[Problem],
                   skip: set[str]) -> tuple[m.Node | None, set[str]]:
    """The node, or None and the host variables that failed. ``skip``: variables that failed already (they did not
    template): not validated, not reported again."""
    if skip:
        return None, set(skip)
    try:
        return m.Node.model_validate(raw), set()
    except ValidationError as exc:
        failed: set[str] = set()
        for err in exc.errors():
            first, *rest = err["loc"]
            if first == "name":
                problems.append(Problem(file=locator.find(host, "bitten_ip"), host=host, field="hostname",
                                        message=f"{host!r} is not a valid host name for Slurm and DNS",
                                        fix="use lower-case letters, digits and '-', at most 63 characters"))
                continue
            var = _NODE_VAR.get(str(first), str(first))
            failed.add(var)
            if err["type"] == "missing" or (err["input"] is None and not rest):
                what = m.HOST_VARS[var][1] if var in m.HOST_VARS else var
                msg, fix = f"required: {what}", f"set {var} for this host or its group"
            else:
                msg, fix = describe(err, m.Node, f"see {var} in inventory/README.md")
            problems.append(Problem(file=locator.find(host, var, rest), host=host, field=_loc([var, *rest]),
                                    message=msg, fix=fix))
        return None, failed


@cache
def _partial_model() -> type[m.Node]:
    """Node with every field optional: what validated of a node whose other fields did not."""
    fields: dict[str, Any] = {name: (cast(Any, info.annotation) | None, None)
                              for name, info in m.Node.model_fields.items() if name not in ("name", "groups")}
    return cast(type[m.Node], create_model("PartialNode", __base__=m.Node, **fields))


def _partial_node(raw: dict[str, Any], failed: set[str]) -> m.Node:
    """A stand-in for an invalid node in the cross-checks: its valid fields, None for the others."""
    keep = {k: v for k, v in raw.items() if _NODE_VAR.get(k, k) not in failed and v is not None}
    values: dict[str, Any] = {"name": raw["name"], "groups": raw["groups"]}
    try:
        valid = _partial_model().model_validate(keep)
        values = {name: getattr(valid, name) for name in m.Node.model_fields}
    except ValidationError:
        values.update({name: None for name in m.Node.model_fields if name not in values})
    return m.Node.model_construct(**values)


def _mapping_of(model: type[T], raw: Any, var: str, locator: Locator, problems: list[Problem]) -> dict[str, T]:
    if not isinstance(raw, Mapping):
        problems.append(Problem(file=locator.find(None, var), field=var, message="expected a mapping of name -> "
                                "settings", fix=f"write {var} as a YAML mapping"))
        return {}
    out: dict[str, T] = {}
    for key, value in raw.items():
        item = validate_into(model, value, var=var, host=None, locator=locator, problems=problems,
                             prefix=[str(key)])
        if item is not None:
            out[str(key)] = item
    return out


def _list_of(model: type[T], raw: Any, var: str, locator: Locator, problems: list[Problem]) -> list[T]:
    if not isinstance(raw, list):
        problems.append(Problem(file=locator.find(None, var), field=var, message="expected a list",
                                fix=f"write {var} as a YAML list"))
        return []
    out: list[T] = []
    for index, value in enumerate(raw):
        item = validate_into(model, value, var=var, host=None, locator=locator, problems=problems,
                             prefix=[index])
        if item is not None:
            out.append(item)
    return out
