"""Ansible front end of bitten.fabric.check: the discovered fabric against the inventory's cabling plan.

Runs on the controller (it imports bitten); ibnetdiscover and iblinkinfo run on the task's host (an SM host or any
host with an HCA on the fabric), or recorded outputs on that host are read instead.
"""

from __future__ import annotations

import base64
import shlex
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("ibnetdiscover_file", "iblinkinfo_file", "timeout", "fail_on_findings"))

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        from bitten.capabilities import site_from_play
        from bitten.fabric.check import DiscoveryError, check
        from bitten.site import SiteError

        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        timeout = int(args.get("timeout", 120))
        try:
            site = site_from_play(task_vars)
        except SiteError as exc:
            raise AnsibleActionFail(f"the site description is invalid:\n{exc}") from None
        if site.fabric is None:
            raise AnsibleActionFail("the site has no bitten_fabric: nothing to compare the fabric with")
        files = {name: args.get(f"{name}_file") for name in ("ibnetdiscover", "iblinkinfo")}
        if any(files.values()):
            outputs = {name: self._read(str(path), task_vars) for name, path in files.items() if path}
        else:
            outputs = {name: self._run(name, timeout) for name in ("ibnetdiscover", "iblinkinfo")}
        try:
            checked = check(site.fabric, outputs)
        except DiscoveryError as exc:
            raise AnsibleActionFail(str(exc)) from None
        result["changed"] = False
        result["findings"] = [f.as_dict() for f in checked.findings]
        result["unparsed"] = checked.unparsed
        result["switches"] = checked.switches
        result["links"] = checked.links
        if checked.findings and args.get("fail_on_findings", True):
            result["failed"] = True
            result["msg"] = (f"fabric {site.fabric.name}: {len(checked.findings)} finding(s):\n"
                             + "\n".join(str(f) for f in checked.findings))
        else:
            result["msg"] = f"fabric {site.fabric.name}: {checked.switches} switches, {checked.links} links; " + (
                f"{len(checked.findings)} finding(s)" if checked.findings else "as the inventory says")
        return result

    def _run(self, tool: str, timeout: int) -> str:
        command = f"timeout {timeout} /usr/sbin/{tool}"
        res = self._low_level_execute_command(command, sudoable=True)
        if res.get("rc") != 0:
            raise AnsibleActionFail(f"{tool} failed on the host (rc {res.get('rc')}): "
                                    f"{(res.get('stderr') or res.get('stdout') or '').strip()[:500]}")
        return str(res.get("stdout") or "")

    def _read(self, path: str, task_vars: dict[str, Any]) -> str:
        res = self._execute_module(module_name="ansible.builtin.slurp", module_args={"src": path},
                                   task_vars=task_vars)
        if res.get("failed"):
            raise AnsibleActionFail(f"cannot read {shlex.quote(path)} on the host: {res.get('msg')}")
        return base64.b64decode(res["content"]).decode("utf-8", errors="replace")
