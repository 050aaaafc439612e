"""Ansible front end of bitten.slurm.accounting: apply the inventory's cluster, QoS, accounts and users.

Runs on the controller (it imports bitten); the sacctmgr queries and commands run on the task's host.
"""

from __future__ import annotations

import shlex
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("site", "users"))

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        from bitten.playsite import site_from_play
        from bitten.site import SiteError
        from bitten.slurm.accounting import AccountingError, desired_from_site, parse_state, plan, queries

        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        use_site = bool(self._task.args.get("site", True))
        users = self._task.args.get("users") or []
        if not isinstance(users, list) or not all(isinstance(u, dict) and "name" in u for u in users):
            raise AnsibleActionFail("users must be a list of {name, accounts, default_account, admin_level}")
        try:
            site = site_from_play(task_vars)
            desired = desired_from_site(site, users, with_site=use_site)
        except SiteError as exc:
            raise AnsibleActionFail(f"the site description is invalid:\n{exc}") from None

        outputs: dict[str, str] = {}
        for name, argv in queries(desired.cluster).items():
            outputs[name] = self._sacctmgr(argv)
        try:
            commands = plan(desired, parse_state(outputs))
        except (AccountingError, ValueError) as exc:
            raise AnsibleActionFail(str(exc)) from None

        result["commands"] = [shlex.join(c) for c in commands]
        result["changed"] = bool(commands)
        if commands and not self._play_context.check_mode:
            for argv in commands:
                self._sacctmgr(argv)
        return result

    def _sacctmgr(self, argv: list[str]) -> str:
        res = self._low_level_execute_command(shlex.join(argv), sudoable=True)
        if res.get("rc") != 0:
            raise AnsibleActionFail(f"{shlex.join(argv)} failed (rc {res.get('rc')}): "
                                    f"{(res.get('stderr') or res.get('stdout') or '').strip()}")
        return str(res.get("stdout") or "")
