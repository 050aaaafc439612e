"""What a changed slurm.conf needs from the running daemons: nothing, `scontrol reconfigure`, or restarts.

Since Slurm 23.11 `scontrol reconfigure` re-executes slurmctld and every slurmd in place (new processes take over
only if they start cleanly), so almost every change, including added or removed nodes, needs no restart; only
the listening ports and the authentication plugins need the daemons restarted (scontrol(1), slurm.conf(5)).
Before 23.11 reconfigure was a re-read in the running process, and node definitions and the plugin choices needed
restarts too. Running jobs survive both paths: slurmstepd is independent of slurmd, and slurmctld reloads its state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

Action = Literal["none", "reconfigure", "restart"]

#: keys whose change needs slurmctld and slurmd restarted on any Slurm version
RESTART_KEYS: frozenset[str] = frozenset({
    "authalttypes", "authtype", "credtype", "slurmctldhost", "controlmachine", "backupcontroller",
    "slurmctldaddr", "slurmctldport", "slurmdport", "slurmuser", "slurmduser", "statesavelocation",
    "slurmdspooldir", "slurmctldpidfile", "slurmdpidfile", "tlstype",
})
#: before 23.11 these were read only at start-up as well (slurm.conf(5) of 22.05)
RESTART_KEYS_BEFORE_23_11: frozenset[str] = RESTART_KEYS | frozenset({
    "nodename", "frontendname", "nodeset", "selecttype", "selecttypeparameters", "grestypes", "proctracktype",
    "taskplugin", "switchtype", "mpidefault", "plugindir", "jobacctgathertype", "accountingstoragetype",
    "jobcomptype", "topologyplugin", "prologflags", "launchtype", "schedulertype", "prioritytype",
    "slurmctldparameters", "slurmdparameters",
})
#: files slurmd reads only at start-up before 23.11
NODE_FILES: frozenset[str] = frozenset({"/etc/slurm/gres.conf", "/etc/slurm/cgroup.conf"})
_VERSION = re.compile(r"^(?:\d+:)?(\d+)\.(\d+)")


def parse_version(version: str) -> tuple[int, int]:
    """Major and minor of a Slurm or Debian package version: '24.11.5-4+deb13u1' -> (24, 11)."""
    match = _VERSION.match(version.strip())
    if not match:
        raise ValueError(f"not a Slurm version: {version!r}")
    return int(match[1]), int(match[2])


def parse(text: str) -> dict[str, list[str]]:
    """slurm.conf as key -> values in file order (keys lower-cased; NodeName and the like repeat)."""
    out: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or "=" not in line:
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip().lower(), []).append(" ".join(value.split()))
    return out


def changed_keys(old: str, new: str) -> set[str]:
    """Keys whose values differ between two versions of a slurm.conf (comments and blank lines ignored)."""
    before, after = parse(old), parse(new)
    return {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}


def change_plan(old: str | None, new: str, version: str, changed_files: Iterable[str]) -> Action:
    """What the running daemons need after the config changed.

    ``old`` and ``new`` are the controller's slurm.conf before and after (``old`` None: it had none yet);
    ``changed_files`` are the paths that changed on hosts that already ran Slurm (a host that is new to the
    cluster starts its daemons with the new files and needs nothing).
    """
    changed = set(changed_files)
    if not changed:
        return "none"
    if old is None:
        return "reconfigure"
    recent = parse_version(version) >= (23, 11)
    keys = changed_keys(old, new)
    if keys & (RESTART_KEYS if recent else RESTART_KEYS_BEFORE_23_11):
        return "restart"
    if not recent and changed & NODE_FILES:
        return "restart"
    return "reconfigure"


def tres_weights(weights: Mapping[str, Any]) -> str:
    """TRESBillingWeights value from a mapping: {"CPU": 1.0, "GRES/gpu": 2} -> CPU=1.0,GRES/gpu=2.0."""
    return ",".join(f"{key}={value if isinstance(value, str) else repr(float(value))}"
                    for key, value in weights.items())
