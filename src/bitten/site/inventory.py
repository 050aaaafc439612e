"""Read an Ansible inventory exactly as ansible-playbook sees it (group_vars and host_vars included)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bitten.site.problems import Problem, SiteError, origin_of

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
    #: problems found while reading (hosts defined twice with different values)
    problems: list[Problem] = field(default_factory=list)


def _vault_secrets(loader: Any, vault_password_file: str | None) -> None:
    """Give the loader vault secrets from a password file (argument or ANSIBLE_VAULT_PASSWORD_FILE)."""
    path = vault_password_file or os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE")
    if not path:
        return
    from ansible.parsing.vault import get_file_vault_secret

    secret = get_file_vault_secret(filename=path, loader=loader)
    secret.load()
    loader.set_vault_secrets([("default", secret)])


def load_inventory(sources: Sequence[str | Path], vault_password_file: str | None = None) -> InventoryData:
    """Load inventory ``sources`` through Ansible's InventoryManager and VariableManager.

    Raises SiteError (naming the path) when a source does not exist or Ansible cannot parse it.
    """
    paths = [str(Path(s)) for s in sources]
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise SiteError(Problem(file=p, message="inventory not found", fix="give the path of an inventory "
                                "directory such as inventory/bitten") for p in missing)

    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    from ansible.vars.manager import VariableManager

    loader = DataLoader()
    try:
        _vault_secrets(loader, vault_password_file)
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
                own = {k: templar.template(v) for k, v in own.items()}
            hostvars[host.name] = own
            host_files[host.name] = str(allvars.get("inventory_file") or paths[0])
    except AnsibleError as exc:
        raise SiteError([Problem(file=", ".join(paths), message=f"Ansible could not read the inventory: "
                                 f"{exc.message}", fix="correct the YAML or the vault password")]) from exc
    return InventoryData(groups=groups, hostvars=hostvars, host_files=host_files, sources=tuple(paths),
                         problems=conflicting_definitions(paths))


def _parse_strictly(inventory: Any, paths: list[str]) -> None:
    """Parse sources, turning Ansible's 'unable to parse' warnings into errors naming the source."""
    from ansible import constants as C

    previous = C.INVENTORY_UNPARSED_IS_FAILED, C.INVENTORY_ANY_UNPARSED_IS_FAILED, C.DUPLICATE_YAML_DICT_KEY
    C.INVENTORY_UNPARSED_IS_FAILED = C.INVENTORY_ANY_UNPARSED_IS_FAILED = True
    # the same host listed twice in one mapping is an error, not "last one wins"
    C.DUPLICATE_YAML_DICT_KEY = "error"
    try:
        inventory.parse_sources(cache=False)
    finally:
        C.INVENTORY_UNPARSED_IS_FAILED, C.INVENTORY_ANY_UNPARSED_IS_FAILED, C.DUPLICATE_YAML_DICT_KEY = previous


def _maybe_template(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, Mapping):
        return any(_maybe_template(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_maybe_template(v) for v in value)
    return False


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
                        message=f"host defined again with {key}={other[key]!r}; {first_where} says {first[key]!r}",
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
