"""Turn inventory variables into the typed Site model, collecting every problem before giving up."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from bitten.site import model as m
from bitten.site.checks import Check, run_checks
from bitten.site.inventory import InventoryData
from bitten.site.locate import Locator
from bitten.site.problems import Problem, SiteError

#: site-wide variables: the same value on every host, normally in group_vars/all
SITE_VARS: dict[str, str] = {
    "bitten_site": "identity of the site: name, domain, timezone",
    "bitten_hardware_profiles": "hardware profiles by name",
    "bitten_slurm": "cluster-wide Slurm settings",
    "bitten_partitions": "Slurm partitions",
    "bitten_qos": "Slurm QoS",
    "bitten_accounts": "Slurm accounts",
    "bitten_cooling": "coolants, CDUs, meters, register maps, cooling loops, the energy ledger and the agent",
    "bitten_ucloud": "UCloud provider and machine types",
    "bitten_provision": "provisioning network, OS images and deploy mode per hardware profile, admin keys",
    "bitten_assumptions": "values of this site that are not publicly known",
    "bitten_lab": "how `bitten lab` builds the site on one machine (lab inventories only)",
}
#: per-host variables (may be set per group)
HOST_VARS: dict[str, str] = {
    "bitten_ip": "the node's address on the cluster network",
    "bitten_hardware_profile": "name of the node's hardware profile",
    "bitten_bmc": "where the node's BMC answers Redfish",
    "bitten_boot_mac": "MAC address the node PXE-boots from",
    "bitten_cooling_loop": "the cooling loop that cools the node",
}
REQUIRED_SITE_VARS = ("bitten_site", "bitten_slurm", "bitten_partitions")

T = TypeVar("T", bound=BaseModel)


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
        return model.model_validate(raw)
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

    # unknown bitten_* variables are typos until proven otherwise
    known = SITE_VARS.keys() | HOST_VARS.keys()
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
    for var in SITE_VARS:
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
    for var in REQUIRED_SITE_VARS:
        if site_raw[var] is None:
            problems.append(Problem(file=source, field=var, message=f"required: {SITE_VARS[var]}",
                                    fix=f"define {var} in group_vars/all (see inventory/README.md)"))

    def site_part(model: type[T], var: str, default: Any = None) -> T | None:
        raw = site_raw.get(var)
        if raw is None:
            raw = default
        if raw is None:
            return None
        return validate_into(model, raw, var=var, host=None, locator=locator, problems=problems)

    info = site_part(m.SiteInfo, "bitten_site")
    slurm = site_part(m.SlurmSettings, "bitten_slurm")
    cooling = site_part(m.Cooling, "bitten_cooling", {})
    ucloud = site_part(m.UCloud, "bitten_ucloud")
    provision = site_part(m.Provision, "bitten_provision")
    lab = site_part(m.Lab, "bitten_lab")
    profiles = _mapping_of(m.HardwareProfile, site_raw.get("bitten_hardware_profiles") or {},
                           "bitten_hardware_profiles", locator, problems)
    partitions = _list_of(m.Partition, site_raw.get("bitten_partitions") or [], "bitten_partitions", locator,
                          problems)
    qos = _list_of(m.Qos, site_raw.get("bitten_qos") or [], "bitten_qos", locator, problems)
    accounts = _list_of(m.Account, site_raw.get("bitten_accounts") or [], "bitten_accounts", locator, problems)
    assumptions = site_raw.get("bitten_assumptions") or []

    groups = {g: tuple(sorted(h)) for g, h in data.groups.items() if g not in ("all", "ungrouped")}
    nodes: dict[str, m.Node] = {}
    for host in hosts:
        hv = data.hostvars[host]
        raw_node = {
            "name": host,
            "groups": tuple(sorted(g for g, members in groups.items() if host in members)),
            "ip": hv.get("bitten_ip"),
            "hardware_profile": hv.get("bitten_hardware_profile"),
            "bmc": hv.get("bitten_bmc"),
            "boot_mac": hv.get("bitten_boot_mac"),
            "cooling_loop": hv.get("bitten_cooling_loop"),
        }
        node = _validate_node(raw_node, host, locator, problems)
        if node is not None:
            nodes[host] = node

    # Cross-check what did validate, so that one run reports every problem; names that are declared but
    # invalid count as declared (their own errors are already reported), hosts that failed are left out.
    groups = {g: tuple(h for h in members if h in nodes) for g, members in groups.items()}
    site = m.Site.model_construct(
        info=info or m.SiteInfo.model_construct(name="invalid", domain="invalid"),
        nodes=nodes, groups=groups, hardware_profiles=profiles,
        slurm=slurm or m.SlurmSettings.model_construct(cluster_name="invalid"),
        partitions=tuple(partitions), qos=tuple(qos), accounts=tuple(accounts),
        cooling=cooling or m.Cooling(), ucloud=ucloud, provision=provision, lab=lab,
        assumptions=tuple(str(a) for a in assumptions),
    )
    problems.extend(run_checks(site, locator, _declared(site_raw), checks))
    if problems:
        raise SiteError(problems)
    assert info is not None and slurm is not None
    return m.Site(
        info=info, nodes=nodes, groups=groups, hardware_profiles=profiles, slurm=slurm,
        partitions=tuple(partitions), qos=tuple(qos), accounts=tuple(accounts),
        cooling=cooling or m.Cooling(), ucloud=ucloud, provision=provision, lab=lab,
        assumptions=tuple(str(a) for a in assumptions),
    )


def _keys(value: Any) -> set[str]:
    return {str(k) for k in value} if isinstance(value, Mapping) else set()


def _declared(site_raw: Mapping[str, Any]) -> dict[str, set[str]]:
    """Names each site-wide section declares, valid or not."""
    cooling = site_raw.get("bitten_cooling") or {}
    cooling = cooling if isinstance(cooling, Mapping) else {}
    provision = site_raw.get("bitten_provision") or {}
    provision = provision if isinstance(provision, Mapping) else {}

    def names(var: str) -> set[str]:
        raw = site_raw.get(var) or []
        return {str(i.get("name")) for i in raw if isinstance(i, Mapping)} if isinstance(raw, list) else set()

    return {
        "profiles": _keys(site_raw.get("bitten_hardware_profiles")),
        "partitions": names("bitten_partitions"),
        "qos": names("bitten_qos"),
        **{section: _keys(cooling.get(section)) for section in
           ("coolants", "cdus", "heat_meters", "meters", "register_maps", "loops")},
        "provision_images": _keys(provision.get("images")),
    }


_NODE_VAR = {"ip": "bitten_ip", "hardware_profile": "bitten_hardware_profile", "bmc": "bitten_bmc",
             "boot_mac": "bitten_boot_mac", "cooling_loop": "bitten_cooling_loop"}


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
                msg, fix = f"required: {HOST_VARS.get(var, var)}", f"set {var} for this host or its group"
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
