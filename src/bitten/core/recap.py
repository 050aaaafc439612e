"""The PLAY RECAP of an ``ansible-playbook`` run, host by host: what changed and what failed.

One parser for every caller that runs playbooks and must know which hosts they failed on (the lab, the rollout's
re-converge, the benches): ANSI colours are stripped, unreachable hosts count as failed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RECAP = re.compile(r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unr>\d+)"
                   r"\s+failed=(?P<failed>\d+)")
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class HostRecap:
    host: str
    ok: int
    changed: int
    unreachable: int
    failed: int

    @property
    def bad(self) -> int:
        """Failed or unreachable tasks: the host did not converge."""
        return self.failed + self.unreachable


def parse_line(line: str) -> HostRecap | None:
    """One recap line (colours allowed), or None when the line is not one."""
    match = RECAP.match(_COLOUR.sub("", line))
    if match is None:
        return None
    return HostRecap(match["host"], int(match["ok"]), int(match["changed"]), int(match["unr"]), int(match["failed"]))


def parse(text: str) -> dict[str, HostRecap]:
    """host -> its recap, from a whole run's output (the last recap of a host wins)."""
    out: dict[str, HostRecap] = {}
    for line in text.splitlines():
        recap = parse_line(line)
        if recap is not None:
            out[recap.host] = recap
    return out


_FATAL = re.compile(r"^(?:fatal|failed): \[(?P<host>[^\]]+)\]: (?:FAILED|UNREACHABLE)! => ?(?P<rest>.*)$")
_JSON_MSG = re.compile(r'"msg": "(?P<msg>(?:[^"\\]|\\.)*)"')


def failures(text: str, limit: int = 240) -> dict[str, str]:
    """host -> the message of its last failed task (the one that stopped it; an ignored failure before it is
    overwritten), from the default callback's output in either result format (JSON or YAML); at most ``limit``
    characters."""
    out: dict[str, str] = {}
    lines = [_COLOUR.sub("", line) for line in text.splitlines()]
    for index, line in enumerate(lines):
        match = _FATAL.match(line)
        if match is None:
            continue
        rest = match["rest"]
        json_msg = _JSON_MSG.search(rest)
        message = json_msg["msg"] if json_msg else ""
        for follow in lines[index + 1:]:
            if message or not follow.startswith(" "):
                break
            if follow.strip().startswith("msg:"):
                message = follow.strip()[4:].strip().strip("'\"")
        message = message or rest.strip()
        out[match["host"]] = message if len(message) <= limit else message[: limit - 1] + "…"
    return out
