"""Load bitten's model and capabilities once in ansible-playbook's own process, before it forks its workers.

Lookups run in a worker process forked for each task and host; without this, every worker imports bitten (pydantic
models, the capabilities, their templates' filters) afresh, which costs more than the lookup itself. Imported here,
at the start of each play, the modules are inherited by every fork. It prints nothing and changes no result.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: bitten_preload
type: aggregate
short_description: import bitten once in the controller process so forked workers inherit it
description:
  - Imports bitten.capabilities when a play starts, in ansible-playbook's own process, so that the lookups
    bitten_facts and bitten_file in the forked workers do not import it again for every task and host.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bitten_preload"
    CALLBACK_NEEDS_ENABLED = False

    def v2_playbook_on_play_start(self, play: Any) -> None:
        # function-local: only plays pay for the import, and only once per process
        # a Python without bitten is not this callback's error: the lookups say so when a task needs them
        with contextlib.suppress(ImportError):
            import bitten.capabilities  # noqa: F401
