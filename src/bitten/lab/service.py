"""What a lab layer contributes: services the lab runs on this machine, and sections of the lab's summary.

Each module of bitten.lab.layers appends to SERVICES and SUMMARIES when it is imported (bitten.lab.layers.load).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bitten.lab.lab import Lab


@dataclass
class LabService:
    """A process the lab runs on this machine (an emulator or a test double), bound to the network gateway."""

    name: str
    #: argv, given the lab (so it can read the site and the gateway address)
    argv: Callable[[Lab], list[str]]
    #: a line or table for the summary, or None
    summary: Callable[[Lab], object] | None = None
    #: TCP port to wait for after start
    port: Callable[[Lab], int] | None = None
    #: whether this lab needs the service at all (a lab without the capability skips it); None: always
    enabled: Callable[[Lab], bool] | None = None
    #: run once the node containers are up, before the service starts (e.g. a stand-in a container needs)
    prepare: Callable[[Lab], None] | None = None


@dataclass
class Checked:
    """A summary section made of checks: printed as its renderable; `bitten lab up` fails when any check did."""

    renderable: object
    failed: int = 0

    def __rich__(self) -> object:
        return self.renderable


#: services that `bitten lab up` starts before the playbooks; layers append theirs
SERVICES: list[LabService] = []
#: extra summary sections, run after the playbooks
SUMMARIES: list[Callable[[Lab], object]] = []
#: steps a layer runs after the containers are up and before the services start (e.g. define virtual machines)
SETUPS: list[Callable[[Lab], None]] = []
#: what a layer removes at `lab down`, after the services stop: returns {kind: [names]} for the report
TEARDOWNS: list[Callable[[Lab], dict[str, list[str]]]] = []
