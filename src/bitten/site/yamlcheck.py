"""Strict YAML for inventories: syntax errors, duplicate keys, mis-indented hosts and undecryptable vaulted files,
each named by file and line, before Ansible reads the inventory (Ansible would warn, keep the last key, or fail
without saying where)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from bitten.site.problems import Problem

try:
    _Base: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Base = yaml.SafeLoader

#: keys a group of a YAML inventory may have (the yaml inventory plugin's format)
GROUP_KEYS = ("hosts", "vars", "children")
VAULT_HEADER = "$ANSIBLE_VAULT"


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """A safe loader that records duplicate keys (with their lines) and reads Ansible's tags (!vault, !unsafe) as
    plain values (noting that it saw one). With ``track`` it keeps, for every mapping and list it builds, the line
    of each key, and the line where each value starts (what Ansible's origin tags say)."""

    def __init__(self, stream: Any, name: str, track: bool = True) -> None:
        super().__init__(stream)
        self.name = name
        self.track = track
        self.tagged = False
        self.duplicates: list[tuple[str, int, int]] = []
        #: id of a constructed mapping -> {key: line of the key}
        self.lines: dict[int, dict[Any, int]] = {}
        #: id of a constructed mapping -> {key: line where its value starts}
        self.value_lines: dict[int, dict[Any, int]] = {}
        #: id of a constructed list -> line where each item starts
        self.item_lines: dict[int, list[int]] = {}

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        out: dict[Any, Any] = {}
        if not self.track:
            for key_node, value_node in node.value:
                key = self.construct_object(key_node, deep=True)
                if key in out:
                    self.duplicates.append((str(key), 0, key_node.start_mark.line + 1))
                out[key] = self.construct_object(value_node, deep=deep)
            return out
        lines: dict[Any, int] = {}
        values: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in out:
                self.duplicates.append((str(key), lines[key], key_node.start_mark.line + 1))
            out[key] = self.construct_object(value_node, deep=deep)
            lines[key] = key_node.start_mark.line + 1
            values[key] = value_node.start_mark.line + 1
        self.lines[id(out)] = lines
        self.value_lines[id(out)] = values
        return out

    def construct_sequence(self, node: Any, deep: bool = False) -> list[Any]:
        out = [self.construct_object(child, deep=deep) for child in node.value]
        if self.track:
            self.item_lines[id(out)] = [child.start_mark.line + 1 for child in node.value]
        return out


def _tagged(loader: _Loader, suffix: str, node: Any) -> Any:
    loader.tagged = True
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


_Loader.add_multi_constructor("!", _tagged)
_Loader.add_constructor("tag:yaml.org,2002:map", lambda loader, node: loader.construct_mapping(node, deep=True))
_Loader.add_constructor("tag:yaml.org,2002:seq", lambda loader, node: loader.construct_sequence(node, deep=True))


def load(path: Path) -> tuple[Any, _Loader]:
    """The data of a YAML file and the loader that read it (its duplicates and key lines); raises yaml.YAMLError."""
    text = path.read_text(encoding="utf-8")
    loader = _Loader(text, str(path))
    try:
        return loader.get_single_data(), loader
    finally:
        loader.dispose()


def check_files(inventories: Sequence[Path], var_files: Sequence[Path],
                secrets: Sequence[tuple[str, Any]]) -> list[Problem]:
    """Problems in the YAML of inventory files (hosts.yml) and group_vars/host_vars files."""
    problems: list[Problem] = []
    for path in [*inventories, *var_files]:
        try:
            head = path.read_text(encoding="utf-8", errors="replace")[:len(VAULT_HEADER)]
        except OSError as exc:
            problems.append(Problem(file=str(path), message=f"cannot read: {exc.strerror}", fix="check the file"))
            continue
        if head == VAULT_HEADER:
            problems.extend(_vaulted(path, secrets))
            continue
        try:
            data, loader = load(path)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = f":{mark.line + 1}" if mark is not None else ""
            problems.append(Problem(file=f"{path}{line}", message=f"not valid YAML: {exc.problem or exc}"
                                    + (f" ({exc.context})" if exc.context else ""),
                                    fix="correct the YAML syntax at that line (indentation, quotes, brackets)"))
            continue
        except yaml.YAMLError as exc:
            problems.append(Problem(file=str(path), message=f"not valid YAML: {exc}", fix="correct the YAML"))
            continue
        for key, first, again in loader.duplicates:
            problems.append(Problem(file=f"{path}:{again}", field=key,
                                    message=f"duplicate key {key!r} (also at line {first}); YAML keeps only one",
                                    fix="remove one of them or merge them"))
        if path in inventories and isinstance(data, Mapping) and "plugin" not in data:
            problems.extend(_structure(path, data, loader))
    return problems


def _structure(path: Path, data: Mapping[Any, Any], loader: _Loader) -> list[Problem]:
    """Keys of a YAML inventory that Ansible would skip with a warning: most often a host indented wrongly."""
    problems: list[Problem] = []

    def group(name: str, body: Any) -> None:
        if body is None:
            return
        if not isinstance(body, Mapping):
            problems.append(Problem(file=str(path), field=f"group {name}", message=f"group {name} is a "
                                    f"{type(body).__name__}, not a mapping", fix="give it hosts:, vars: or children:"))
            return
        lines = loader.lines.get(id(body), {})
        for key, value in body.items():
            if key not in GROUP_KEYS:
                problems.append(Problem(
                    file=f"{path}:{lines.get(key, '?')}", field=f"group {name}",
                    message=f"unexpected key {key!r} in group {name}: only hosts, vars and children are read "
                            "(Ansible skips it with a warning)",
                    fix=f"indent {key!r} under hosts: if it is a host, under children: if it is a group"))
            elif key == "hosts" and value is not None:
                if not isinstance(value, Mapping):
                    problems.append(Problem(file=f"{path}:{lines.get(key, '?')}", field=f"group {name}",
                                            message="hosts must be a mapping of host -> variables",
                                            fix="write hosts: as a mapping (host: or host: {var: value})"))
                    continue
                host_lines = loader.lines.get(id(value), {})
                for host, hvars in value.items():
                    if hvars is not None and not isinstance(hvars, Mapping):
                        problems.append(Problem(
                            file=f"{path}:{host_lines.get(host, '?')}", host=str(host), field=f"group {name}",
                            message=f"host {host} has {hvars!r} instead of a mapping of variables",
                            fix="give the host a mapping (var: value), or nothing"))
            elif key == "children" and value is not None:
                if not isinstance(value, Mapping):
                    problems.append(Problem(file=f"{path}:{lines.get(key, '?')}", field=f"group {name}",
                                            message="children must be a mapping of group -> group",
                                            fix="write children: as a mapping"))
                    continue
                for child, child_body in value.items():
                    group(str(child), child_body)

    for name, body in data.items():
        group(str(name), body)
    return problems


def _vaulted(path: Path, secrets: Sequence[tuple[str, Any]]) -> list[Problem]:
    """A vaulted file: the password must be given and must decrypt it (Ansible's error names neither the file)."""
    fix = "give --vault-password-file (or ANSIBLE_VAULT_PASSWORD_FILE) with the password the file was encrypted with"
    if not secrets:
        return [Problem(file=str(path), message="the file is encrypted with ansible-vault and no vault password was "
                        "given", fix=fix)]
    from ansible.errors import AnsibleError
    from ansible.parsing.vault import VaultLib

    try:
        VaultLib(secrets=list(secrets)).decrypt(path.read_bytes())
    except AnsibleError:
        return [Problem(file=str(path), message="the vault password given does not decrypt this file", fix=fix)]
    return []
