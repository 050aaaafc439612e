"""Slurm accounting from the inventory: read what slurmdbd holds, compare, and plan the sacctmgr commands.

Additive by design: the cluster, the QoS and accounts the inventory names are created or brought to the named
values; QoS, accounts, users and associations it does not name (such as the accounts the UCloud Integration Module
creates, and their GrpTRESMins) are never touched. For a QoS the inventory names, the limits bitten models
(priority, MaxWall, MaxTRESPerUser, MaxJobsPerUser, GrpTRES, flags) are authoritative: removing one from the
inventory clears it in Slurm. Empty descriptions and organizations are left as Slurm has them.

The planner is pure (text in, argv lists out); the Ansible action plugin bitten_slurm_accounting runs the queries
and the commands on the accounting host.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bitten.site.model import Account, Qos, Site, values

SACCTMGR = ("sacctmgr", "--immediate")
QOS_FORMAT = "Name,Description,Priority,MaxWall,MaxTRESPU,MaxJobsPU,GrpTRES,Flags"
ADMIN_LEVELS = {"none": "None", "operator": "Operator", "administrator": "Administrator", "admin": "Administrator"}


class AccountingError(ValueError):
    """The inventory asks for something sacctmgr cannot do; the message says what to change."""


def queries(cluster: str) -> dict[str, list[str]]:
    """The read-only sacctmgr commands whose output ``parse_state`` reads, by name."""
    show = ["sacctmgr", "--noheader", "--parsable2", "show"]
    return {
        "clusters": [*show, "cluster", "format=Cluster"],
        "qos": [*show, "qos", f"format={QOS_FORMAT}"],
        "accounts": [*show, "account", "format=Account,Descr,Org"],
        "associations": [*show, "association", "where", f"cluster={cluster}",
                         "format=Account,User,ParentName,QOS,DefaultQOS"],
        "users": [*show, "user", "format=User,DefaultAccount,AdminLevel"],
        "tres": TRES_QUERY,
    }


#: the TRES slurmdbd knows; gres/gpu and gres/gpu:<type> appear once slurmctld has registered with
#: AccountingStorageTRES naming them
TRES_QUERY = ["sacctmgr", "--noheader", "--parsable2", "show", "tres", "format=Type,Name"]


# --- state -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QosRow:
    name: str
    description: str
    priority: int
    max_wall: str
    max_tres_per_user: str
    max_jobs_per_user: str
    grp_tres: str
    flags: str


@dataclass(frozen=True)
class AssocRow:
    account: str
    user: str
    parent: str
    qos: frozenset[str]
    default_qos: str


@dataclass
class AccountingState:
    clusters: set[str] = field(default_factory=set)
    qos: dict[str, QosRow] = field(default_factory=dict)
    #: account -> (description, organization)
    accounts: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: (account, user) -> association; user "" is the account's own association
    associations: dict[tuple[str, str], AssocRow] = field(default_factory=dict)
    #: user -> (default account, admin level)
    users: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: TRES names slurmdbd knows (cpu, mem, gres/gpu, gres/gpu:b200, ...)
    tres: set[str] = field(default_factory=set)


def _rows(text: str, width: int) -> Iterable[list[str]]:
    for line in text.splitlines():
        if not line.strip():
            continue
        cells = line.split("|")
        if len(cells) < width:
            raise ValueError(f"unexpected sacctmgr output line (want {width} fields): {line!r}")
        yield [c.strip() for c in cells[:width]]


def parse_state(outputs: Mapping[str, str]) -> AccountingState:
    """AccountingState from the outputs of ``queries()`` (same keys)."""
    state = AccountingState()
    for (name,) in _rows(outputs.get("clusters", ""), 1):
        state.clusters.add(name)
    for cells in _rows(outputs.get("qos", ""), 8):
        name, descr, prio, wall, tres_pu, jobs_pu, grp, flags = cells
        state.qos[name] = QosRow(name, descr, int(prio or 0), wall, tres_pu, jobs_pu, grp, flags)
    for name, descr, org in _rows(outputs.get("accounts", ""), 3):
        state.accounts[name] = (descr, org)
    for account, user, parent, qos, default_qos in _rows(outputs.get("associations", ""), 5):
        qos_set = frozenset(q for q in qos.split(",") if q)
        state.associations[(account, user)] = AssocRow(account, user, parent, qos_set, default_qos)
    for user, default_account, admin in _rows(outputs.get("users", ""), 3):
        state.users[user] = (default_account, admin)
    state.tres = parse_tres(outputs.get("tres", ""))
    return state


def parse_tres(text: str) -> set[str]:
    """TRES names from ``TRES_QUERY`` output: 'gres|gpu' -> 'gres/gpu', 'cpu|' -> 'cpu'."""
    return {(f"{kind}/{name}" if name else kind).lower() for kind, name in _rows(text, 2)}


# --- value normalisation -----------------------------------------------------------------------------------

def wall_seconds(value: str | None) -> int | None:
    """A Slurm time limit in seconds (None: unlimited, or empty as sacctmgr prints an unset limit), parsed by the
    site model's parser (bitten.site.model.values.slurm_seconds)."""
    if value is None or not value.strip():
        return None
    try:
        return values.slurm_seconds(value)
    except ValueError as exc:
        raise AccountingError(str(exc)) from None


def tres(value: str | None) -> dict[str, str]:
    """A TRES string as {name: normalised count}: 'gres/gpu=4,mem=1G' -> {'gres/gpu': '4', 'mem': '1024'} (the site
    model's parser, bitten.site.model.values.tres)."""
    try:
        return values.tres(value)
    except ValueError as exc:
        raise AccountingError(str(exc)) from None


def _int_or_none(value: str | int | None) -> int | None:
    if value is None or value == "" or str(value) == "-1":
        return None
    return int(value)


def _flags(value: str | Iterable[str]) -> frozenset[str]:
    items = value.split(",") if isinstance(value, str) else value
    return frozenset(f.strip().lower() for f in items if f.strip())


# --- desired state -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserSpec:
    name: str
    accounts: tuple[str, ...] = ()
    default_account: str | None = None
    #: None leaves the admin level as it is
    admin_level: str | None = None


@dataclass(frozen=True)
class DesiredAccounting:
    cluster: str
    qos: tuple[Qos, ...] = ()
    accounts: tuple[Account, ...] = ()
    users: tuple[UserSpec, ...] = ()


def desired_from_site(site: Site, extra_users: Sequence[Mapping[str, object]] = (), *,
                      with_site: bool = True) -> DesiredAccounting:
    """The inventory's cluster, QoS and accounts, its accounts' users, and ``extra_users`` (role variables).

    ``with_site`` False: only the cluster and ``extra_users`` (for roles that add a service user).
    """
    users: dict[str, UserSpec] = {}
    for account in site.accounts if with_site else ():
        for name in account.users:
            spec = users.get(name, UserSpec(name))
            users[name] = UserSpec(name, (*spec.accounts, account.name), spec.default_account, spec.admin_level)
    for raw in extra_users:
        name = str(raw["name"])
        spec = users.get(name, UserSpec(name))
        listed = raw.get("accounts") or []
        accounts = [str(a) for a in listed] if isinstance(listed, list | tuple) else [str(listed)]
        level = raw.get("admin_level")
        default = raw.get("default_account")
        users[name] = UserSpec(
            name,
            tuple(dict.fromkeys([*spec.accounts, *accounts])),
            str(default) if default else spec.default_account,
            str(level) if level else spec.admin_level,
        )
    if not with_site:
        return DesiredAccounting(site.slurm.cluster_name, users=tuple(users.values()))
    return DesiredAccounting(site.slurm.cluster_name, site.qos, site.accounts, tuple(users.values()))


def unknown_tres(desired: DesiredAccounting, known: set[str]) -> dict[str, set[str]]:
    """QoS name -> TRES its limits use that slurmdbd does not know (yet)."""
    out: dict[str, set[str]] = {}
    for qos in desired.qos:
        used = set(tres(qos.max_tres_per_user)) | set(tres(qos.grp_tres))
        missing = used - known
        if missing:
            out[qos.name] = missing
    return out


# --- the plan ----------------------------------------------------------------------------------------------


def _cmd(*args: str) -> list[str]:
    return [*SACCTMGR, *args]


def _qos_settings(qos: Qos, row: QosRow | None) -> list[str]:
    """``Key=value`` settings that bring ``row`` (None: a new QoS) to ``qos``."""
    out: list[str] = []
    if qos.description and (row is None or row.description.lower() != qos.description.lower()):
        out.append(f"Description={qos.description}")
    if (row is None and qos.priority) or (row is not None and row.priority != qos.priority):
        out.append(f"Priority={qos.priority}")
    want_wall = wall_seconds(qos.max_wall)
    if want_wall != wall_seconds(row.max_wall if row else None):
        out.append(f"MaxWall={qos.max_wall if want_wall is not None else -1}")
    want_jobs = qos.max_jobs_per_user
    if want_jobs != _int_or_none(row.max_jobs_per_user if row else None):
        out.append(f"MaxJobsPerUser={want_jobs if want_jobs is not None else -1}")
    for key, want, have in (("MaxTRESPerUser", qos.max_tres_per_user, row.max_tres_per_user if row else ""),
                            ("GrpTRES", qos.grp_tres, row.grp_tres if row else "")):
        setting = _tres_setting(want, have)
        if setting:
            out.append(f"{key}={setting}")
    if _flags(qos.flags) != _flags(row.flags if row else ""):
        out.append(f"Flags={','.join(qos.flags) if qos.flags else -1}")
    return out


def _tres_setting(want: str | None, have: str) -> str:
    """The TRES value that turns ``have`` into ``want``; sacctmgr merges by name, -1 removes one."""
    wanted, current = tres(want), tres(have)
    if wanted == current:
        return ""
    items = [f"{name}={count}" for name, count in wanted.items() if current.get(name) != count]
    items += [f"{name}=-1" for name in current if name not in wanted]
    return ",".join(items)


def _account_order(accounts: Sequence[Account]) -> list[Account]:
    """Parents before children; a parent that is neither in the inventory nor root must exist already."""
    by_name = {a.name: a for a in accounts}
    ordered: list[Account] = []
    seen: set[str] = set()

    def visit(account: Account, path: tuple[str, ...]) -> None:
        if account.name in seen:
            return
        if account.name in path:
            raise AccountingError("accounts form a cycle: " + " -> ".join([*path, account.name]))
        parent = by_name.get(account.parent)
        if parent is not None:
            visit(parent, (*path, account.name))
        seen.add(account.name)
        ordered.append(account)

    for account in accounts:
        visit(account, ())
    return ordered


def plan(desired: DesiredAccounting, state: AccountingState) -> list[list[str]]:
    """sacctmgr commands (argv lists, in order) that bring ``state`` to ``desired``; empty when nothing differs."""
    cluster = desired.cluster
    commands: list[list[str]] = []
    if cluster not in state.clusters:
        commands.append(_cmd("add", "cluster", cluster))

    for qos in desired.qos:
        row = state.qos.get(qos.name)
        settings = _qos_settings(qos, row)
        if row is None:
            commands.append(_cmd("add", "qos", qos.name, *settings))
        elif settings:
            commands.append(_cmd("modify", "qos", "where", f"name={qos.name}", "set", *settings))

    known_accounts = set(state.accounts) | {"root"}
    for account in _account_order(desired.accounts):
        if account.parent not in known_accounts:
            raise AccountingError(f"account {account.name}: parent {account.parent!r} is neither in "
                                  "bitten_accounts nor in Slurm; define it in bitten_accounts")
        commands.extend(_account_commands(cluster, account, state))
        known_accounts.add(account.name)

    for user in desired.users:
        commands.extend(_user_commands(cluster, user, state, known_accounts))
    return commands


def _account_commands(cluster: str, account: Account, state: AccountingState) -> list[list[str]]:
    if account.default_qos and account.qos and account.default_qos not in account.qos:
        raise AccountingError(f"account {account.name}: default_qos {account.default_qos!r} is not in its qos "
                              f"list {list(account.qos)}; add it there")
    qos_settings: list[str] = []
    assoc = state.associations.get((account.name, ""))
    if account.qos and (assoc is None or assoc.qos != frozenset(account.qos)):
        qos_settings.append(f"QOS={','.join(account.qos)}")
    if account.default_qos and (assoc is None or assoc.default_qos != account.default_qos):
        qos_settings.append(f"DefaultQOS={account.default_qos}")

    if account.name not in state.accounts or assoc is None:
        # a new account, or one that exists in slurmdbd without an association on this cluster
        settings = [f"Cluster={cluster}", f"Parent={account.parent}"]
        if account.description:
            settings.append(f"Description={account.description}")
        if account.organization:
            settings.append(f"Organization={account.organization}")
        return [_cmd("add", "account", account.name, *settings, *qos_settings)]

    commands: list[list[str]] = []
    descr, org = state.accounts[account.name]
    account_settings = []
    if account.description and descr.lower() != account.description.lower():
        account_settings.append(f"Description={account.description}")
    if account.organization and org.lower() != account.organization.lower():
        account_settings.append(f"Organization={account.organization}")
    if account_settings:
        commands.append(_cmd("modify", "account", "where", f"name={account.name}", "set", *account_settings))
    assoc_settings = list(qos_settings)
    if assoc.parent != account.parent:
        assoc_settings.insert(0, f"Parent={account.parent}")
    if assoc_settings:
        commands.append(_cmd("modify", "account", "where", f"name={account.name}", f"cluster={cluster}", "set",
                             *assoc_settings))
    return commands


def _user_commands(cluster: str, user: UserSpec, state: AccountingState, known_accounts: set[str]) -> list[list[str]]:
    level = None
    if user.admin_level is not None:
        level = ADMIN_LEVELS.get(user.admin_level.lower())
        if level is None:
            raise AccountingError(f"user {user.name}: admin level {user.admin_level!r} is not one of None, "
                                  "Operator, Administrator")
    for account in user.accounts:
        if account not in known_accounts:
            raise AccountingError(f"user {user.name}: account {account!r} is not defined; add it to "
                                  "bitten_accounts")
    if user.default_account and user.default_account not in user.accounts:
        raise AccountingError(f"user {user.name}: default_account {user.default_account!r} is not among its "
                              f"accounts {list(user.accounts)}")
    commands: list[list[str]] = []
    exists = user.name in state.users
    if not exists and not user.accounts:
        raise AccountingError(f"user {user.name} is not in Slurm and has no accounts to be created in; give it "
                              "accounts")
    missing = [a for a in user.accounts if (a, user.name) not in state.associations]
    for index, account in enumerate(missing):
        settings = [f"Account={account}", f"Cluster={cluster}"]
        if not exists and index == 0:
            settings.append(f"DefaultAccount={user.default_account or user.accounts[0]}")
            if level is not None:
                settings.append(f"AdminLevel={level}")
        commands.append(_cmd("add", "user", user.name, *settings))
    if exists:
        current_default, current_level = state.users[user.name]
        settings = []
        if user.default_account and current_default != user.default_account:
            settings.append(f"DefaultAccount={user.default_account}")
        if level is not None and current_level.lower() != level.lower():
            settings.append(f"AdminLevel={level}")
        if settings:
            commands.append(_cmd("modify", "user", "where", f"name={user.name}", "set", *settings))
    return commands
