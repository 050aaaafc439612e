"""Turn inventory variables into the typed Site model, collecting every problem before giving up."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, TypeVar, cast

from pydantic import BaseModel, TypeAdapter, ValidationError

from bitten.site import model as m
from bitten.site.checks import Check, run_checks
from bitten.site.inventory import InventoryData
from bitten.site.locate import Locator
from bitten.site.problems import Problem, SiteError

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
            shown = err.get("input")
            msg = err["msg"]
            if err["type"] not in ("missing",) and not isinstance(shown, dict | list):
                msg += f" (got {shown!r})"
            problems.append(Problem(
                file=locator.find(host, var, path), host=host, field=_loc([var, *path]), message=msg,
                fix=_FIXES.get(err["type"], f"see the {var} reference in inventory/README.md"),
            ))
        return None


@cache
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


def _same(a: Any, b: Any) -> bool:
    return a is b or a == b


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
        for var in data.hostvars[host]:
            if var not in known:
                where = locator.find(host, var)
                if (where, var) not in seen_unknown:
                    seen_unknown.add((where, var))
                    problems.append(Problem(file=where, host=host, field=var, message="unknown site variable",
                                            fix="one of: " + ", ".join(sorted(known))))

    # site-wide variables must agree on every host
    site_raw: dict[str, Any] = {}
    for var in sections:
        value = data.hostvars[reference].get(var) if reference else None
        site_raw[var] = value
        for host in hosts:
            other = data.hostvars[host].get(var)
            if not _same(value, other):
                problems.append(Problem(
                    file=locator.find(host, var), host=host, field=var,
                    message="site-wide variable differs from the value other hosts see",
                    fix="set site-wide variables once, in group_vars/all"))
                break
    for var, section in sections.items():
        if section.required and site_raw[var] is None:
            problems.append(Problem(file=source, field=var, message=f"required: {section.description}",
                                    fix=f"define {var} in group_vars/all (see inventory/README.md)"))

    values: dict[str, Any] = {}
    stand_ins: dict[str, Any] = {}
    for section in sections.values():
        value = _validate_section(section, site_raw.get(section.var), locator, problems)
        if value is not None:
            values[section.field] = value
        elif section.stand_in is not None:
            stand_ins[section.field] = section.model.model_construct(**section.stand_in)

    groups = {g: tuple(sorted(h)) for g, h in data.groups.items() if g not in ("all", "ungrouped")}
    nodes: dict[str, m.Node] = {}
    for host in hosts:
        hv = data.hostvars[host]
        member_of = tuple(sorted(g for g, members in groups.items() if host in members))
        raw_node: dict[str, Any] = {"name": host, "groups": member_of}
        raw_node.update({field: hv.get(var) for var, (field, _description) in m.HOST_VARS.items()})
        node = _validate_node(raw_node, host, locator, problems)
        if node is not None:
            nodes[host] = node

    # Cross-check what did validate, so that one run reports every problem; names that are declared but
    # invalid count as declared (their own errors are already reported), hosts that failed are left out.
    groups = {g: tuple(h for h in members if h in nodes) for g, members in groups.items()}
    site = m.Site.model_construct(nodes=nodes, groups=groups, **{**values, **stand_ins})
    problems.extend(run_checks(site, locator, _declared(site_raw), checks))
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


def _validate_node(raw: dict[str, Any], host: str, locator: Locator, problems: list[Problem]) -> m.Node | None:
    try:
        return m.Node.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            first, *rest = err["loc"]
            if first == "name":
                problems.append(Problem(file=locator.find(host, "bitten_ip"), host=host, field="hostname",
                                        message=f"{host!r} is not a valid host name for Slurm and DNS",
                                        fix="use lower-case letters, digits and '-', at most 63 characters"))
                continue
            var = _NODE_VAR.get(str(first), str(first))
            if err["type"] == "missing" or (err["input"] is None and not rest):
                what = m.HOST_VARS[var][1] if var in m.HOST_VARS else var
                msg, fix = f"required: {what}", f"set {var} for this host or its group"
            else:
                msg = err["msg"] if repr(err["input"]) in err["msg"] else f"{err['msg']} (got {err['input']!r})"
                fix = _FIXES.get(err["type"], f"see {var} in inventory/README.md")
            problems.append(Problem(file=locator.find(host, var, rest), host=host, field=_loc([var, *rest]),
                                    message=msg, fix=fix))
        return None


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
