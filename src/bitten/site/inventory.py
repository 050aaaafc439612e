"""Read an Ansible inventory exactly as ansible-playbook sees it (group_vars and host_vars included)."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bitten.site import fastload, yamlcheck
from bitten.site.problems import Problem, SiteError, is_vaulted, origin_of

#: only variables with this prefix make up the site model
PREFIX = "bitten_"


@dataclass
class InventoryData:
    """The parts of an inventory the site model is built from."""

    #: group name -> host names (sorted), including the implicit ``all``
    groups: dict[str, list[str]]
    #: host -> its ``bitten_*`` variables after Ansible's precedence rules and templating
    hostvars: dict[str, dict[str, Any]]
    #: host -> the inventory file that defines it (for messages about missing variables)
    host_files: dict[str, str] = field(default_factory=dict)
    #: the inventory source(s) as given
    sources: tuple[str, ...] = ()
    #: problems found while reading (hosts defined twice with different values, values that did not template)
    problems: list[Problem] = field(default_factory=list)
    #: (host, variable) whose value could not be read (a templating error, already in problems)
    invalid: set[tuple[str, str]] = field(default_factory=set)
    #: (host, variable, path inside it) -> "file:line", when the values carry no origin tags (the fast loader)
    locate: Callable[[str, str, Sequence[str | int]], str | None] | None = None


def _vault_secrets(loader: Any, vault_password_file: str | None) -> list[tuple[str, Any]]:
    """Vault secrets from a password file (argument or ANSIBLE_VAULT_PASSWORD_FILE), given to the loader (vaulted
    files) and to ansible-core's process-wide vault context (inline !vault values, decrypted when templated)."""
    path = vault_password_file or os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE")
    if not path:
        return []
    # imported here, not at the top: only this path needs it, and start-up stays light
    from ansible.parsing.vault import VaultSecretsContext, get_file_vault_secret

    secret = get_file_vault_secret(filename=path, loader=loader)
    secret.load()
    secrets = [("default", secret)]
    loader.set_vault_secrets(secrets)
    context = VaultSecretsContext.current(optional=True)
    if context is None:
        VaultSecretsContext.initialize(VaultSecretsContext(list(secrets)))
    else:  # a second inventory in this process (ansible-playbook's own context, tests): add ours
        context.secrets.extend(secrets)
    return secrets


@contextmanager
def _strict_yaml() -> Iterator[None]:
    """Duplicate keys are errors while bitten reads the inventory. ansible-core 2.19 reads DUPLICATE_YAML_DICT_KEY
    through its config manager (the constant is not consulted), so the setting goes in through the manager's
    environment source; the repository's ansible.cfg sets the same for ansible-playbook."""
    name = "ANSIBLE_DUPLICATE_YAML_DICT_KEY"
    previous = os.environ.get(name)
    os.environ[name] = "error"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a site is read and validated. Both build millions of objects and free
    almost none (no cycles among them), so every collection of the oldest generation scans an ever larger heap for
    nothing: a quarter of the CPU time at 10,000 nodes. What is garbage is collected when it is back on."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@collector_paused()
def load_inventory(sources: Sequence[str | Path], vault_password_file: str | None = None, *,
                   fast: bool = True) -> InventoryData:
    """Load inventory ``sources`` as ansible-playbook sees them: a plain YAML inventory directly
    (bitten.site.fastload, when ``fast`` and the inventory needs nothing else), else through Ansible's
    InventoryManager and VariableManager.

    Raises SiteError (naming file and line) when a source does not exist, is not valid YAML (syntax, duplicate keys,
    a mis-indented host) or a vaulted file cannot be decrypted. A value that does not template is a problem naming
    file, host and variable; the other values are still read, so every check runs.
    """
    paths = [str(Path(s)) for s in sources]
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise SiteError(Problem(file=p, message="inventory not found", fix="give the path of an inventory "
                                "directory such as inventory/bitten") for p in missing)

    if fast:
        try:
            fast_groups, fast_hostvars, fast_files, origins = fastload.load(paths)
        except fastload.NotPlain:
            pass
        else:
            def locate(host: str, var: str, path: Sequence[str | int]) -> str | None:
                source = origins.get((host, var))
                return fastload.origin(source, var, path) if source is not None else None

            return InventoryData(groups=fast_groups, hostvars=fast_hostvars, host_files=fast_files,
                                 sources=tuple(paths), locate=locate)

    # imported here, not at the top: only this path needs it, and start-up stays light
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    from ansible.vars.manager import VariableManager

    loader = DataLoader()
    secrets = _vault_secrets(loader, vault_password_file)
    early = yamlcheck.check_files(_inventory_files(paths), _var_files(paths), secrets)
    if early:
        raise SiteError(early)
    problems: list[Problem] = []
    invalid: set[tuple[str, str]] = set()
    try:
        with _strict_yaml():
            inventory = InventoryManager(loader=loader, sources=paths, parse=False)
            _parse_strictly(inventory, paths)
            manager = VariableManager(loader=loader, inventory=inventory)
            groups = {name: sorted(hosts) for name, hosts in inventory.get_groups_dict().items()}
            hostvars: dict[str, dict[str, Any]] = {}
            host_files: dict[str, str] = {}
            for host in inventory.get_hosts():
                allvars = manager.get_vars(host=host, include_hostvars=False)
                own = {k: v for k, v in allvars.items() if k.startswith(PREFIX)}
                if any(_maybe_template(v) for v in own.values()):
                    templar = Templar(loader=loader, variables=allvars)
                    for key, value in list(own.items()):
                        if not _maybe_template(value):
                            continue
                        try:
                            own[key] = templar.template(value)
                        except AnsibleError as exc:
                            del own[key]
                            invalid.add((host.name, key))
                            problems.append(_template_problem(host.name, key, value, exc, bool(secrets)))
                hostvars[host.name] = own
                host_files[host.name] = str(allvars.get("inventory_file") or paths[0])
            problems.extend(conflicting_group_settings(inventory, loader))
    except AnsibleError as exc:
        raise SiteError([Problem(file=", ".join(paths), message=f"Ansible could not read the inventory: "
                                 f"{exc.message}", fix="correct the YAML or the vault password")]) from exc
    return InventoryData(groups=groups, hostvars=hostvars, host_files=host_files, sources=tuple(paths),
                         problems=[*problems, *conflicting_definitions(paths)], invalid=invalid)


def _template_problem(host: str, var: str, value: Any, exc: Exception, have_secrets: bool) -> Problem:
    where = _first_origin(value) or "?"
    text = str(getattr(exc, "message", exc))
    if "vault" in text.lower() or "decrypt" in text.lower():
        return Problem(file=where, host=host, field=var,
                       message="the value is encrypted with ansible-vault and cannot be decrypted"
                       + (" with the vault password given" if have_secrets else ": no vault password was given"),
                       fix="give --vault-password-file (or ANSIBLE_VAULT_PASSWORD_FILE) with the password it was "
                       "encrypted with")
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return Problem(file=where, host=host, field=var, message=f"cannot template the value: {first}",
                   fix="define the variables it uses for this host, or write the value out")


def _first_origin(value: Any) -> str | None:
    found = origin_of(value)
    if found and ":" in found:
        return found
    if isinstance(value, Mapping):
        items: Iterable[Any] = value.values()
    elif isinstance(value, list | tuple):
        items = value
    else:
        return found
    for item in items:
        inner = _first_origin(item)
        if inner:
            return inner
    return found


def _parse_strictly(inventory: Any, paths: list[str]) -> None:
    """Parse sources, turning Ansible's 'unable to parse' warnings into errors naming the source."""
    # imported here, not at the top: only this path needs it, and start-up stays light
    from ansible import constants as C

    previous = C.INVENTORY_UNPARSED_IS_FAILED, C.INVENTORY_ANY_UNPARSED_IS_FAILED
    C.INVENTORY_UNPARSED_IS_FAILED = C.INVENTORY_ANY_UNPARSED_IS_FAILED = True
    try:
        inventory.parse_sources(cache=False)
    finally:
        C.INVENTORY_UNPARSED_IS_FAILED, C.INVENTORY_ANY_UNPARSED_IS_FAILED = previous


def _maybe_template(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if type(value).__name__ == "EncryptedString":
        return True
    if isinstance(value, Mapping):
        return any(_maybe_template(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_maybe_template(v) for v in value)
    return False


def conflicting_group_settings(inventory: Any, loader: Any) -> list[Problem]:
    """A host in two groups, neither inside the other, that set one bitten_ variable to different values.

    Ansible resolves the tie silently (depth, then ansible_group_priority, then the group's name): report where both
    values are instead, once per pair of groups.
    """
    # imported here, not at the top: only this path needs it, and start-up stays light
    from ansible.inventory.helpers import sort_groups
    from ansible.vars.plugins import get_vars_from_inventory_sources

    own: dict[str, dict[str, Any]] = {}
    for name, group in inventory.groups.items():
        if name == "all":
            continue
        found = {k: v for k, v in group.get_vars().items() if k.startswith(PREFIX)}
        # stage "task": what VariableManager.get_vars asks for (group_vars files are read on demand)
        plugin = get_vars_from_inventory_sources(loader, inventory._sources, [group], "task")
        found.update({k: v for k, v in plugin.items() if k.startswith(PREFIX)})
        if found:
            own[name] = found
    if len(own) < 2:
        return []
    reported: dict[tuple[str, str, str], list[str]] = {}
    for host in inventory.get_hosts():
        groups = [g for g in sort_groups(host.get_groups()) if g.name in own]
        if len(groups) < 2:
            continue
        for var in {v for g in groups for v in own[g.name]}:
            setters = [g for g in groups if var in own[g.name]]
            # a group inside another overrides it on purpose (the deeper one wins)
            leaves = [g for g in setters if not any(g in other.get_ancestors() for other in setters)]
            for index, loser in enumerate(leaves[:-1]):
                winner = leaves[-1]
                if own[loser.name][var] != own[winner.name][var]:
                    reported.setdefault((var, loser.name, winner.name), []).append(host.name)
                del index
    problems = []
    for (var, loser, winner), hosts in sorted(reported.items()):
        hosts.sort()
        more = f" (and {len(hosts) - 1} more host(s))" if len(hosts) > 1 else ""
        problems.append(Problem(
            file=origin_of(own[winner][var]) or "?", host=hosts[0], field=var,
            message=f"groups {loser} and {winner} both set {var}, differently "
                    f"({origin_of(own[loser][var]) or loser} and here); Ansible silently takes {winner}'s{more}",
            fix=f"set {var} in one of the groups, in the hosts' own host_vars, or make one group a child of the other"))
    return problems


def conflicting_definitions(paths: Sequence[str]) -> list[Problem]:
    """Hosts defined more than once in YAML inventory files with different values for the same variable.

    Ansible merges such definitions silently (the last one read wins), which is how two nodes end up
    sharing an address: report both places instead.
    """
    from ansible.inventory.manager import InventoryManager  # noqa: F401  (ensures ansible is importable)
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.inventory import expand_hostname_range

    loader = DataLoader()
    seen: dict[str, list[tuple[str, dict[str, Any]]]] = {}

    def hosts_of(pattern: str) -> list[str]:
        return list(expand_hostname_range(pattern)) if "[" in pattern else [pattern]

    def walk(group: Any) -> None:
        if not isinstance(group, Mapping):
            return
        for pattern, hvars in (group.get("hosts") or {}).items():
            where = origin_of(pattern) or "?"
            for host in hosts_of(str(pattern)):
                seen.setdefault(host, []).append((where, dict(hvars or {})))
        for child in (group.get("children") or {}).values():
            walk(child)

    for file in _inventory_files(paths):
        data = loader.load_from_file(str(file))
        if isinstance(data, Mapping):
            for group in data.values():
                walk(group)
    problems = []
    for host, definitions in sorted(seen.items()):
        if len(definitions) < 2:
            continue
        first_where, first = definitions[0]
        for where, other in definitions[1:]:
            for key in sorted(first.keys() & other.keys()):
                if first[key] != other[key]:
                    problems.append(Problem(
                        file=where, host=host, field=key,
                        message=f"host defined again with {key}={_shown(other[key])}; {first_where} says "
                                f"{_shown(first[key])}",
                        fix="define each host once (Ansible would silently keep the last value)"))
    return problems


def _inventory_files(paths: Sequence[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_file() and p.suffix in (".yml", ".yaml"):
            out.append(p)
        elif p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.is_file() and f.suffix in (".yml", ".yaml")))
    return out


def _shown(value: Any) -> str:
    return "<vaulted value>" if is_vaulted(value) else repr(value)


def _var_files(paths: Sequence[str]) -> list[Path]:
    """group_vars and host_vars files next to the inventory sources (what Ansible's host_group_vars plugin reads)."""
    out: list[Path] = []
    for p in map(Path, paths):
        base = p if p.is_dir() else p.parent
        for kind in ("group_vars", "host_vars"):
            root = base / kind
            if root.is_dir():
                out.extend(sorted(f for f in root.rglob("*") if f.is_file() and not f.name.startswith(".")
                                  and f.suffix in ("", ".yml", ".yaml", ".json")))
    return out
