"""Ansible front end of bitten.slurm.accounting: apply the inventory's cluster, QoS, accounts and users.

Runs on the controller (it imports bitten); the sacctmgr queries and commands run on the task's host.
"""

from __future__ import annotations

import shlex
import time
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("site", "users", "tres_timeout"))

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        from bitten.capabilities import site_from_play
        from bitten.site import SiteError
        from bitten.slurm.accounting import (
            TRES_QUERY,
            AccountingError,
            desired_from_site,
            parse_state,
            parse_tres,
            plan,
            queries,
            unknown_tres,
        )

        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        use_site = bool(self._task.args.get("site", True))
        users = self._task.args.get("users") or []
        timeout = float(self._task.args.get("tres_timeout", 60))
        if not isinstance(users, list) or not all(isinstance(u, dict) and "name" in u for u in users):
            raise AnsibleActionFail("users must be a list of {name, accounts, default_account, admin_level}")
        try:
            site = site_from_play(task_vars)
            desired = desired_from_site(site, users, with_site=use_site)
        except SiteError as exc:
            raise AnsibleActionFail(f"the site description is invalid:\n{exc}") from None

        outputs = {name: self._sacctmgr(argv) for name, argv in queries(desired.cluster).items()}
        try:
            state = parse_state(outputs)
            commands = plan(desired, state)
        except (AccountingError, ValueError) as exc:
            raise AnsibleActionFail(str(exc)) from None

        check_mode = bool(self._play_context.check_mode)
        # QoS limits on gres/gpu need the TRES in slurmdbd, which slurmctld registers when it starts
        missing = unknown_tres(desired, state.tres)
        deadline = time.monotonic() + timeout
        while missing and not check_mode and time.monotonic() < deadline:
            time.sleep(2)
            missing = unknown_tres(desired, parse_tres(self._sacctmgr(TRES_QUERY)))
        if missing and not check_mode:
            detail = "; ".join(f"QoS {q}: {', '.join(sorted(t))}" for q, t in sorted(missing.items()))
            raise AnsibleActionFail(
                f"slurmdbd does not know the TRES these QoS limits use ({detail}) after {timeout:.0f} s. TRES come "
                "from AccountingStorageTRES in slurm.conf and are registered when slurmctld starts: check the names "
                "in bitten_qos (cpu, mem, node, billing, gres/gpu, gres/gpu:<type>) and that slurmctld runs.")

        result["commands"] = [shlex.join(c) for c in commands]
        result["changed"] = bool(commands)
        if commands and not check_mode:
            for argv in commands:
                self._sacctmgr(argv)
        return result

    def _sacctmgr(self, argv: list[str]) -> str:
        res = self._low_level_execute_command(shlex.join(argv), sudoable=True)
        if res.get("rc") != 0:
            raise AnsibleActionFail(f"{shlex.join(argv)} failed (rc {res.get('rc')}): "
                                    f"{(res.get('stderr') or res.get('stdout') or '').strip()}")
        return str(res.get("stdout") or "")
