"""Validation problems: what is wrong, where (file, line, host, field) and how to fix it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: exit code for invalid input, shared by every command that validates a site
EXIT_INVALID = 2


def origin_of(value: Any) -> str | None:
    """Return ``path:line`` where Ansible loaded ``value`` from, when Ansible tagged it.

    ansible-core >= 2.19 tags every value it reads from YAML with its origin; values that did not come
    from a file (defaults, computed values) carry none.
    """
    try:
        from ansible._internal._datatag._tags import Origin
    except ImportError:  # pragma: no cover - older ansible-core
        return None
    tag = Origin.get_tag(value)
    if tag is None or not tag.path:
        return None
    return f"{tag.path}:{tag.line_num}" if tag.line_num else str(tag.path)


def is_vaulted(value: Any) -> bool:
    """Whether ``value`` is (or holds) an ansible-vault value: ciphertext, or plaintext decrypted from it. Neither
    is ever shown in a message."""
    if isinstance(value, dict):
        return any(is_vaulted(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(is_vaulted(v) for v in value)
    if type(value).__name__ == "EncryptedString":
        return True
    try:
        from ansible._internal._datatag._tags import VaultedValue
    except ImportError:  # pragma: no cover - older ansible-core
        return False
    return bool(VaultedValue.is_tagged_on(value))


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a site description."""

    file: str
    message: str
    host: str | None = None
    field: str | None = None
    fix: str | None = None

    def __str__(self) -> str:
        where = [self.file]
        if self.host:
            where.append(f"host {self.host}")
        if self.field:
            where.append(f"field {self.field}")
        text = f"{': '.join(where)}: {self.message}"
        if self.fix:
            text += f" (fix: {self.fix})"
        return text


def _order(problem: Problem) -> tuple[str, int, str, str, str]:
    path, _, line = problem.file.rpartition(":")
    if not line.isdigit():
        path, line = problem.file, "0"
    return (path, int(line), problem.host or "", problem.field or "", problem.message)


class SiteError(Exception):
    """The site description is invalid; carries every problem found, not only the first."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(set(problems), key=_order)
        super().__init__(f"{len(self.problems)} problem(s) in the site description")

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)
