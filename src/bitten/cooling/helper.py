"""The cooling agent's one privileged program: drain, resume and cap exactly the nodes of its loops, nothing else.

The agent runs as its own unprivileged user. What it may change in Slurm it asks of this program, which sudo runs
as root with a fixed argument list (``python -I -m bitten.cooling.helper``, no argument the caller chooses; the
sudoers rule has no wildcard). The request is one JSON object on stdin; the answer one JSON object on stdout.
Everything is checked against the policy file (``/etc/bitten/cooling/allowed.json``, root's, generated from the
site model: the nodes of the agent's loops, the reason prefix, the GPU power range) before anything runs:

==============  ==================================================  =============================================
action          request                                             what runs (argv, never a shell)
==============  ==================================================  =============================================
drain           nodes, reason (starts with the prefix, no ``=``)    scontrol update NodeName=.. State=DRAIN Reason=..
resume          nodes (each drained with the agent's reason)        scontrol update NodeName=.. State=RESUME
requeue         nodes, jobs (each running on one of those nodes)    scontrol requeue JOBS
cancel          nodes, jobs (each running on one of those nodes)    scancel JOBS
cap             node, watts (within the node's GPU power range)     the policy's gpu_power_command
==============  ==================================================  =============================================

So the agent can never set a node DOWN, change another attribute, touch a node outside its loops, resume a node an
administrator drained, or end another job. Every answer carries what Slurm shows afterwards (the node states read
back), so the agent reports what Slurm did. Exit 0: done (see the answer); 2: refused (nothing ran); 1: Slurm failed.

Standard library and bitten.core.scontrol only (it runs as root: the less it imports, the less there is to trust).
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bitten.core.process import Result, run
from bitten.core.scontrol import NodeState, Scontrol, ScontrolError

POLICY = Path("/etc/bitten/cooling/allowed.json")
ACTIONS = ("drain", "resume", "requeue", "cancel", "cap")
NODE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
JOB = re.compile(r"^[0-9]{1,12}(_[0-9]{1,9})?$")
UNSAFE = re.compile(r"[=\"\r\n\t\x00-\x1f\x7f]")
MAX_REASON = 200
TIMEOUT_S = 20.0


class Refused(Exception):
    """The request is not one the policy allows: nothing ran."""


class SlurmFailed(Exception):
    """Slurm could not be asked or refused the change."""


def load_policy(path: Path = POLICY) -> dict[str, Any]:
    """The policy file, refused unless root owns it and nobody else may write it (nor its directory)."""
    try:
        info = path.stat()
        parent = path.parent.stat()
    except OSError as exc:
        raise Refused(f"cannot read the policy {path}: {exc.strerror}") from None
    for what, st in ((path, info), (path.parent, parent)):
        if st.st_uid != 0 or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise Refused(f"{what} must be root's and writable by root only")
    try:
        policy = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Refused(f"the policy {path} is not readable JSON: {exc}") from None
    if not isinstance(policy, dict) or not isinstance(policy.get("nodes"), list):
        raise Refused(f"the policy {path} lists no nodes")
    return policy


def _nodes(request: dict[str, Any], policy: dict[str, Any]) -> list[str]:
    nodes = request.get("nodes")
    if not isinstance(nodes, list) or not nodes or not all(isinstance(n, str) for n in nodes):
        raise Refused("nodes: a non-empty list of node names")
    if len(set(nodes)) != len(nodes):
        raise Refused("nodes: a node named twice")
    allowed = set(policy["nodes"])
    outside = [n for n in nodes if n not in allowed or not NODE.match(n)]
    if outside:
        raise Refused(f"not a node of the agent's loops: {', '.join(sorted(outside))[:200]}")
    return list(nodes)


def _run(argv: Sequence[str]) -> Result:
    result = run(list(argv), TIMEOUT_S, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"})
    if result.missing or result.timed_out:
        raise SlurmFailed(f"{argv[0]}: {result.stderr.strip() or 'no answer within the time limit'}")
    return result


def _scontrol(policy: dict[str, Any]) -> Scontrol:
    return Scontrol([str(policy.get("scontrol", "/usr/bin/scontrol"))], TIMEOUT_S)


def node_states(policy: dict[str, Any], nodes: Sequence[str]) -> dict[str, dict[str, str | None]]:
    """``scontrol show node -o`` of the nodes (bitten.core.scontrol): name -> {state, reason}."""
    try:
        shown = _scontrol(policy).node_states(nodes)
    except ScontrolError as exc:
        raise SlurmFailed(str(exc)) from None
    return {name: {"state": node.state, "reason": node.reason} for name, node in shown.items()}


def _drained(node: dict[str, str | None]) -> bool:
    return NodeState("", str(node.get("state", "")), node.get("reason")).drained


def _update(policy: dict[str, Any], nodes: list[str], fields: dict[str, str]) -> dict[str, Any]:
    error = ""
    try:
        _scontrol(policy).update(nodes, fields)
    except ScontrolError as exc:  # read back anyway: scontrol exits 1 for a node that does not respond
        error = str(exc)[:300]
    return {"nodes": node_states(policy, nodes), "scontrol_error": error}


def _running(policy: dict[str, Any], nodes: list[str]) -> set[str]:
    result = _run([policy.get("squeue", "/usr/bin/squeue"), "-h", "-t", "RUNNING", "-w", ",".join(nodes), "-o", "%A"])
    if result.returncode != 0:
        raise SlurmFailed(f"squeue: exit {result.returncode}: {result.stderr.strip()[:300]}")
    return {line.strip() for line in result.stdout.splitlines() if JOB.match(line.strip())}


def handle(request: Any, policy: dict[str, Any]) -> dict[str, Any]:
    """Check one request against the policy and carry it out; Refused before anything runs."""
    if not isinstance(request, dict):
        raise Refused("the request is a JSON object")
    action = request.get("action")
    if action not in ACTIONS:
        raise Refused(f"action: one of {', '.join(ACTIONS)} (not {str(action)[:40]!r})")
    allowed_keys = {"drain": {"nodes", "reason"}, "resume": {"nodes"}, "requeue": {"nodes", "jobs"},
                    "cancel": {"nodes", "jobs"}, "cap": {"nodes", "watts"}}[action] | {"action"}
    extra = set(request) - allowed_keys
    if extra:
        raise Refused(f"{action} takes {', '.join(sorted(allowed_keys - {'action'}))}, not "
                      f"{', '.join(sorted(map(str, extra)))[:100]}")
    nodes = _nodes(request, policy)
    prefix = str(policy.get("reason_prefix", "bitten-cooling:"))
    if action == "drain":
        reason = request.get("reason")
        if not isinstance(reason, str) or not reason.startswith(prefix + " ") or len(reason) > MAX_REASON \
                or UNSAFE.search(reason):
            raise Refused(f"reason: starts with {prefix!r}, at most {MAX_REASON} characters, no '=', quote or "
                          "control character")
        return _update(policy, nodes, {"State": "DRAIN", "Reason": reason})
    if action == "resume":
        states = node_states(policy, nodes)
        theirs = [n for n in nodes if n not in states or not _drained(states[n])
                  or not str(states[n].get("reason") or "").startswith(prefix)]
        if theirs:
            raise Refused(f"not drained by the agent (left alone): {', '.join(theirs)}")
        return _update(policy, nodes, {"State": "RESUME"})
    if action in ("requeue", "cancel"):
        jobs = request.get("jobs")
        if not isinstance(jobs, list) or not jobs or not all(isinstance(j, str) and JOB.match(j) for j in jobs):
            raise Refused("jobs: a non-empty list of job ids")
        running = _running(policy, nodes)
        elsewhere = [j for j in jobs if j not in running]
        if elsewhere:
            raise Refused(f"not running on these nodes: {', '.join(elsewhere)[:200]}")
        argv = ([policy.get("scontrol", "/usr/bin/scontrol"), "requeue", ",".join(jobs)] if action == "requeue"
                else [policy.get("scancel", "/usr/bin/scancel"), *jobs])
        result = _run(argv)
        left = sorted(set(jobs) & _running(policy, nodes))
        return {"jobs_left": left, "exit": result.returncode, "error": result.stderr.strip()[:300]}
    # cap
    watts = request.get("watts")
    command = policy.get("gpu_power_command") or []
    if len(nodes) != 1:
        raise Refused("cap: one node at a time")
    bounds = (policy.get("gpu_watts") or {}).get(nodes[0])
    if not command or not isinstance(bounds, list) or len(bounds) != 2:
        raise Refused(f"no GPU power range for {nodes[0]} in the policy")
    if isinstance(watts, bool) or not isinstance(watts, int) or not bounds[0] <= watts <= bounds[1]:
        raise Refused(f"watts: a whole number within [{bounds[0]}, {bounds[1]}]")
    argv = [str(part).replace("{node}", nodes[0]).replace("{watts}", str(watts)) for part in command]
    result = _run(argv)
    if result.returncode != 0:
        raise SlurmFailed(f"{argv[0]}: exit {result.returncode}: {result.stderr.strip()[:300]}")
    return {"capped": nodes[0], "watts": watts}


def main(argv: Sequence[str] | None = None, stdin: Any = None, policy_path: Path | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args:
            raise Refused("takes no arguments: the request is JSON on stdin")
        if os.geteuid() != 0 and policy_path is None:
            raise Refused("runs as root (through sudo); the agent asks it for what it may change")
        raw = (stdin or sys.stdin).read(64 * 1024)
        try:
            request = json.loads(raw)
        except ValueError:
            raise Refused("the request is not JSON") from None
        answer = handle(request, load_policy(policy_path or POLICY))
    except Refused as exc:
        print(json.dumps({"ok": False, "refused": str(exc)}))
        return 2
    except SlurmFailed as exc:
        print(json.dumps({"ok": False, "error": str(exc)}))
        return 1
    print(json.dumps({"ok": True, **answer}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
