"""The fast path of load_inventory: a plain YAML inventory read the way ansible-playbook reads it, without Ansible.

Used only when the inventory needs nothing else of Ansible: YAML inventory files (the yaml plugin's format, no
inventory plugins, no host ranges or ports in host names), group_vars and host_vars files, no vault, no template in
a bitten_ value, Ansible's default variable precedence and hash behaviour, no host defined twice and no group
conflict (both are reported by the Ansible path, with Ansible's view of them). Anything else returns None and
load_inventory falls back to Ansible's InventoryManager. tests/test_fastload.py checks that both give the identical
model on every inventory in the repository and on generated ones.

Ansible's precedence for a host's inventory variables (VariableManager.get_vars without a play): group all's
inventory vars, then every other group's inventory vars, then group_vars/all, then group_vars/<group>, groups in
the order (depth, ansible_group_priority, name); then the host's inventory vars, then host_vars/<host>. Each level
replaces top-level keys (hash_behaviour = replace).
"""

from __future__ import annotations

import configparser
import hashlib
import marshal
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from bitten.site import yamlcheck
from bitten.site.cache import user_cache
from bitten.site.problems import Problem

PREFIX = "bitten_"
#: Ansible's INVENTORY_IGNORE_EXTS default: files of an inventory directory that are not inventory sources
IGNORED = (".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg", ".retry")
INVENTORY_EXTS = (".yml", ".yaml")
#: YAML_FILENAME_EXTENSIONS, then no extension (DataLoader.find_vars_files)
VARS_EXTS = (".yml", ".yaml", ".json", "")
#: settings that change how inventories and variables are read: when set, Ansible reads the inventory
_SETTINGS = {
    "defaults": ("hash_behaviour", "precedence", "vars_plugins_enabled", "inventory_ignore_extensions",
                 "inventory_ignore_patterns", "run_vars_plugins", "inventory_plugins", "vars_plugins"),
    "inventory": ("enable_plugins", "ignore_extensions", "ignore_patterns"),
}
_ENV = ("ANSIBLE_HASH_BEHAVIOUR", "ANSIBLE_PRECEDENCE", "ANSIBLE_VARS_ENABLED", "ANSIBLE_INVENTORY_ENABLED",
        "ANSIBLE_INVENTORY_IGNORE", "ANSIBLE_INVENTORY_IGNORE_REGEX", "ANSIBLE_RUN_VARS_PLUGINS",
        "ANSIBLE_INVENTORY_PLUGINS", "ANSIBLE_VARS_PLUGINS")


class NotPlain(Exception):
    """The inventory needs Ansible itself (the reason says why)."""


@dataclass
class Source:
    """One mapping of variables and where it is: a file and the keys that lead to the mapping in it."""

    file: str
    keys: tuple[str, ...]
    values: Mapping[str, Any]


@dataclass
class Origins:
    """Which source gave each host its value of each variable: the group levels (shared by the hosts of the same
    groups) and the host's own."""

    hosts: dict[str, tuple[Mapping[str, Source], Mapping[str, Source]]] = field(default_factory=dict)

    def get(self, key: tuple[str, str]) -> Source | None:
        host, var = key
        levels = self.hosts.get(host)
        if levels is None:
            return None
        return levels[1].get(var) or levels[0].get(var)


@dataclass
class _Group:
    name: str
    parents: set[str] = field(default_factory=set)
    hosts: list[str] = field(default_factory=list)
    vars: list[Source] = field(default_factory=list)
    priority: int = 1


def ansible_config_is_default() -> bool:
    """No environment variable or ansible.cfg setting changes how Ansible reads inventories and variables."""
    if any(os.environ.get(name) for name in _ENV):
        return False
    candidates = [os.environ.get("ANSIBLE_CONFIG"), "ansible.cfg", "~/.ansible.cfg", "/etc/ansible/ansible.cfg"]
    for candidate in candidates:
        if not candidate:
            continue
        path = Path(candidate).expanduser()
        if path.is_dir():
            path = path / "ansible.cfg"
        if path.is_file():
            parser = configparser.ConfigParser(interpolation=None, strict=False)
            try:
                parser.read(path)
            except configparser.Error:
                return False
            return not any(parser.has_option(section, key) for section, keys in _SETTINGS.items() for key in keys)
    return True


def _plain(value: Any) -> bool:
    """No template in a value (Ansible would template it), and only YAML's plain types in it."""
    # the exact types a YAML parse gives, tested first (the ABC checks below cost most of a 10,000-node walk)
    kind = type(value)
    if kind is str:
        return "{" not in value or ("{{" not in value and "{%" not in value and "{#" not in value)
    if kind is dict:
        for k, v in value.items():  # noqa: SIM110 - loops, not all(): a generator per mapping costs more here
            if type(k) is not str or not _plain(v):
                return False
        return True
    if kind is list:
        for v in value:  # noqa: SIM110
            if not _plain(v):
                return False
        return True
    if value is None or kind is bool or kind is int or kind is float:
        return True
    if isinstance(value, str):
        return "{{" not in value and "{%" not in value and "{#" not in value
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, bool | int | float)


class _Reader:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.files: list[Path] = []

    def read(self, path: Path) -> Any:
        """A file's data; NotPlain for vault, Ansible tags or anything yamlcheck would report."""
        text = path.read_bytes()
        if text.startswith(b"$ANSIBLE_VAULT"):
            raise NotPlain(f"{path} is vaulted")
        cached = _cache_file(text)
        if cached is not None and cached.is_file():
            try:
                return marshal.loads(cached.read_bytes())  # noqa: S302 - our own cache (0700, 0600), runs no code
            except (EOFError, ValueError, TypeError, OSError):
                pass
        data = self._parse(path, text)
        if cached is not None:
            _store(cached, data)
        return data

    def _parse(self, path: Path, text: bytes) -> Any:
        loader = yamlcheck._Loader(text, str(path), track=False)
        try:
            data = loader.get_single_data()
        except yaml.YAMLError as exc:
            raise NotPlain(f"{path}: {exc}") from None
        finally:
            loader.dispose()
        if loader.duplicates or loader.tagged:
            raise NotPlain(f"{path}: duplicate keys or Ansible tags")
        self.files.append(path)
        return data


#: files smaller than this parse faster than their cache entry is found
CACHE_MIN_BYTES = 64 * 1024


def _cache_file(text: bytes) -> Path | None:
    """Where the parse of a large YAML file is cached, by the digest of its bytes (and the parser's version):
    a file that changes gets a new entry, so a cached parse is always the parse of these bytes."""
    root = user_cache("yaml")
    if len(text) < CACHE_MIN_BYTES or root is None:
        return None
    digest = hashlib.sha256(text + f"|{yaml.__version__}|{_FORMAT}".encode()).hexdigest()
    return root / f"{digest}.marshal"


#: bump when what a cached parse holds changes
_FORMAT = 1


def _store(path: Path, data: Any) -> None:
    """Cache a parse (plain data: marshal, which runs no code when read back); failures only cost speed."""
    try:
        blob = marshal.dumps(data)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(blob)
        os.chmod(tmp, 0o600)
        tmp.replace(path)
    except (OSError, ValueError):
        pass


def _var_files(root: Path, name: str) -> list[Path]:
    """What Ansible's host_group_vars plugin reads for ``name`` under ``root`` (group_vars/ or host_vars/)."""
    base = root / name
    for ext in VARS_EXTS:
        candidate = Path(f"{base}{ext}")
        if candidate.exists():
            return _dir_files(candidate) if candidate.is_dir() else [candidate]
    return []


def _dir_files(path: Path) -> list[Path]:
    found: list[Path] = []
    for name in sorted(os.listdir(path)):
        if name.startswith(".") or name.endswith("~"):
            continue
        full = path / name
        ext = os.path.splitext(name)[1]
        if full.is_dir() and not ext:
            found.extend(_dir_files(full))
        elif full.is_file() and (not ext or ext in VARS_EXTS):
            found.append(full)
    return found


def load(paths: Sequence[str]) -> tuple[dict[str, list[str]], dict[str, dict[str, Any]], dict[str, str], Origins]:
    """Groups, hostvars, host files and the source of every (host, variable); NotPlain when Ansible must read it."""
    if not ansible_config_is_default():
        raise NotPlain("ansible configuration changes how inventories are read")
    reader = _Reader()
    groups: dict[str, _Group] = {"all": _Group("all"), "ungrouped": _Group("ungrouped")}
    host_sources: dict[str, list[Source]] = {}
    host_files: dict[str, str] = {}
    defined: dict[str, dict[Any, Any]] = {}
    var_roots: list[Path] = []

    def group_of(name: str) -> _Group:
        if name not in groups:
            groups[name] = _Group(name)
        return groups[name]

    def walk(file: str, name: str, body: Any, keys: tuple[str, ...], parent: str | None) -> None:
        group = group_of(name)
        if parent is not None and name != "all":
            group.parents.add(parent)
        if body is None:
            return
        if not isinstance(body, Mapping) or set(body) - {"hosts", "vars", "children"}:
            raise NotPlain(f"{file}: group {name} is not in the yaml plugin's format")
        gvars = body.get("vars")
        if gvars is not None:
            if not isinstance(gvars, Mapping):
                raise NotPlain(f"{file}: vars of {name}")
            if "ansible_group_priority" in gvars:
                group.priority = int(gvars["ansible_group_priority"])
            group.vars.append(Source(file, (*keys, "vars"), gvars))
        hosts = body.get("hosts")
        if hosts is not None:
            if not isinstance(hosts, Mapping):
                raise NotPlain(f"{file}: hosts of {name}")
            for host, hvars in hosts.items():
                host = str(host)
                if "[" in host or ":" in host:
                    raise NotPlain(f"{file}: host {host} needs Ansible (a range or a port)")
                if hvars is not None and not isinstance(hvars, Mapping):
                    raise NotPlain(f"{file}: host {host}")
                if hvars:
                    earlier = defined.setdefault(host, {})
                    if any(k in earlier and earlier[k] != v for k, v in hvars.items()):
                        # defined again with other values: the Ansible path reports both places
                        raise NotPlain(f"{file}: host {host} is defined twice with different values")
                    earlier.update(hvars)
                host_files.setdefault(host, file)
                host_sources.setdefault(host, []).append(Source(file, (*keys, "hosts", host), hvars or {}))
                group.hosts.append(host)
        children = body.get("children")
        if children is not None:
            if not isinstance(children, Mapping):
                raise NotPlain(f"{file}: children of {name}")
            for child, child_body in children.items():
                walk(file, str(child), child_body, (*keys, "children", str(child)), name)

    for raw in paths:
        path = Path(raw)
        if path.is_file():
            sources = [path]
            base = path.parent
        elif path.is_dir():
            sources = []
            for entry in sorted(path.iterdir()):
                if entry.name in ("group_vars", "host_vars") and entry.is_dir():
                    continue
                if entry.name.startswith(".") or entry.name.endswith(IGNORED):
                    continue
                if not entry.is_file() or entry.suffix not in INVENTORY_EXTS:
                    raise NotPlain(f"{entry} is not a YAML inventory file")
                sources.append(entry)
            base = path
        else:
            raise NotPlain(f"{path} does not exist")
        for source in sources:
            if source.suffix not in INVENTORY_EXTS:
                raise NotPlain(f"{source} is not a YAML inventory file")
            data = reader.read(source)
            if data is None:
                continue
            if not isinstance(data, Mapping) or "plugin" in data:
                raise NotPlain(f"{source} is an inventory plugin's configuration")
            file = os.path.abspath(source)
            for name, body in data.items():
                walk(file, str(name), body, (str(name),), None)
        var_roots.append(base)

    # Ansible: every group without a parent is a child of all; hosts of no group but all are ungrouped
    for name, group in groups.items():
        if name not in ("all",) and not group.parents:
            group.parents.add("all")
    member: dict[str, set[str]] = {host: set() for host in host_sources}
    for name, group in groups.items():
        for host in group.hosts:
            member[host].add(name)
    for host, names in member.items():
        if not names - {"all", "ungrouped"}:
            names.add("ungrouped")
            groups["ungrouped"].hosts.append(host)
        elif "ungrouped" in names:
            names.discard("ungrouped")
            groups["ungrouped"].hosts.remove(host)

    ancestors = _ancestors(groups)
    depth = _depths(groups)
    # group_vars and host_vars files, in inventory source order
    group_files: dict[str, list[Source]] = {name: [] for name in groups}
    host_var_files: dict[str, list[Source]] = {host: [] for host in host_sources}
    for base in var_roots:
        if (base / "group_vars").is_dir():
            for name in groups:
                for found in _var_files(base / "group_vars", name):
                    group_files[name].append(_vars_source(reader, found))
        if (base / "host_vars").is_dir():
            for host in host_sources:
                for found in _var_files(base / "host_vars", host):
                    host_var_files[host].append(_vars_source(reader, found))

    def order(names: set[str]) -> list[str]:
        return sorted(names - {"all"}, key=lambda n: (depth[n], groups[n].priority, n))

    # the group levels are the same for every host of the same groups: merged once per set of groups
    merged_groups: dict[frozenset[str], tuple[dict[str, Any], dict[str, Source]]] = {}
    hostvars: dict[str, dict[str, Any]] = {}
    origins = Origins()
    for host in host_sources:
        direct = member[host]
        everyone = frozenset(direct | {a for g in direct for a in ancestors[g]} | {"all"})
        merged = merged_groups.get(everyone)
        if merged is None:
            ordered = order(set(everyone))
            chain = [*groups["all"].vars, *(s for g in ordered for s in groups[g].vars), *group_files["all"],
                     *(s for g in ordered for s in group_files[g])]
            _no_conflict(ordered, groups, group_files, ancestors)
            merged = ({}, {})
            for level in chain:
                for key, value in level.values.items():
                    if isinstance(key, str) and key.startswith(PREFIX):
                        merged[0][key] = value
                        merged[1][key] = level
            merged_groups[everyone] = merged
        own = dict(merged[0])
        mine: dict[str, Source] = {}
        for level in (*host_sources[host], *host_var_files[host]):
            for key, value in level.values.items():
                if isinstance(key, str) and key.startswith(PREFIX):
                    own[key] = value
                    mine[key] = level
        origins.hosts[host] = (merged[1], mine)
        hostvars[host] = own
    # a template anywhere in a bitten_ value needs Ansible to resolve it (each mapping checked once)
    levels: list[list[Source]] = [*(g.vars for g in groups.values()), *group_files.values(),
                                  *host_var_files.values(), *host_sources.values()]
    for level_list in levels:
        for level in level_list:
            for key, value in level.values.items():
                if isinstance(key, str) and key.startswith(PREFIX) and not _plain(value):
                    raise NotPlain(f"{key} in {level.file} needs templating")
    group_hosts = {name: sorted(_hosts_of(name, groups)) for name in groups}
    return group_hosts, hostvars, host_files, origins


def _vars_source(reader: _Reader, file: Path) -> Source:
    data = reader.read(file)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise NotPlain(f"{file} is not a mapping")
    return Source(os.path.abspath(file), (), data)


def _ancestors(groups: Mapping[str, _Group]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}

    def up(name: str, seen: tuple[str, ...]) -> set[str]:
        if name in out:
            return out[name]
        if name in seen:
            raise NotPlain(f"group {name} is its own ancestor")
        found: set[str] = set()
        for parent in groups[name].parents:
            found |= {parent, *up(parent, (*seen, name))}
        out[name] = found
        return found

    for name in groups:
        up(name, ())
    return out


def _depths(groups: Mapping[str, _Group]) -> dict[str, int]:
    """Ansible's Group.depth: the longest chain of parents up to all."""
    out: dict[str, int] = {"all": 0}

    def depth(name: str) -> int:
        if name not in out:
            out[name] = max(depth(p) + 1 for p in groups[name].parents)
        return out[name]

    for name in groups:
        depth(name)
    return out


def _hosts_of(name: str, groups: Mapping[str, _Group]) -> set[str]:
    """Hosts of a group and of its descendants (Group.get_hosts)."""
    if name == "all":
        return {h for g in groups.values() for h in g.hosts}
    children: dict[str, set[str]] = {}
    for child, group in groups.items():
        for parent in group.parents:
            children.setdefault(parent, set()).add(child)
    found: set[str] = set()
    stack = [name]
    seen: set[str] = set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        found.update(groups[current].hosts)
        stack.extend(children.get(current, ()))
    return found


def _no_conflict(ordered: list[str], groups: Mapping[str, _Group], files: Mapping[str, list[Source]],
                 ancestors: Mapping[str, set[str]]) -> None:
    """Two unrelated groups of one host that set a bitten_ variable differently: the Ansible path reports it."""
    setters: dict[str, list[tuple[str, Any]]] = {}
    for name in ordered:
        for source in (*groups[name].vars, *files[name]):
            for key, value in source.values.items():
                if isinstance(key, str) and key.startswith(PREFIX):
                    setters.setdefault(key, []).append((name, value))
    for found in setters.values():
        names = {n for n, _ in found}
        leaves = [(n, v) for n, v in found if not any(n in ancestors[o] for o in names if o != n)]
        if len({repr(v) for _, v in leaves}) > 1:
            raise NotPlain("groups set a variable differently")


@cache
def _parsed(file: str) -> tuple[Any, yamlcheck._Loader]:
    return yamlcheck.load(Path(file))


def origin(source: Source, var: str, path: Sequence[str | int]) -> str | None:
    """file:line of ``var`` (then ``path`` inside it) in ``source``, as Ansible's origin tags give it: the line
    where the value starts. The file is read again (with the lines of its keys) only when a problem needs it."""
    data, loader = _parsed(source.file)
    for name in source.keys:
        data = data.get(name) if isinstance(data, Mapping) else None
    if not isinstance(data, Mapping) or var not in data:
        return source.file
    line = loader.value_lines.get(id(data), {}).get(var)
    value = data[var]
    for key in path:
        lines = loader.value_lines.get(id(value))
        try:
            inner = value[key]
        except (KeyError, IndexError, TypeError):
            break
        if lines is not None and key in lines:
            line = lines[key]
        elif isinstance(key, int) and id(value) in loader.item_lines and key < len(loader.item_lines[id(value)]):
            line = loader.item_lines[id(value)][key]
        value = inner
    return f"{source.file}:{line}" if line else source.file
