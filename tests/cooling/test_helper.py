"""The agent's privileged helper: it drains, resumes, requeues, cancels and caps exactly the nodes of the agent's
loops, and refuses everything else before anything runs. Against a stateful stand-in for scontrol, squeue and
scancel (a TEST DOUBLE of their command lines; the real ones answer in the cooling_agent Molecule scenario, which
also proves the sudo rule), and through the agent itself."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from bitten.capabilities import load_site, render_file
from bitten.cooling import helper
from bitten.cooling.nodes import HelperSlurm
from bitten.core.scontrol import ScontrolError as SlurmError

REPO = Path(__file__).resolve().parents[2]
REASON = "bitten-cooling: leak on cdu-a (loop loop-a): leak detected by Moisture"

FAKE = r"""#!/usr/bin/env python3
# TEST DOUBLE of scontrol, squeue and scancel (by the name it is called as), over a JSON state file
import json, sys
from pathlib import Path
state_file = Path(sys.argv[0]).parent / "slurm.json"
state = json.loads(state_file.read_text())
nodes, jobs = state["nodes"], state["jobs"]
name, args = Path(sys.argv[0]).name, sys.argv[1:]
with open(Path(sys.argv[0]).parent / "calls", "a") as log:
    log.write(json.dumps([name, *args]) + "\n")
if name == "scontrol" and args[:2] == ["show", "node"]:
    for n in args[3].split(","):
        if n in nodes:
            print(f"NodeName={n} Arch=x86_64 State={nodes[n]['state']} Reason={nodes[n].get('reason') or '(null)'}")
elif name == "scontrol" and args[0] == "update":
    fields = dict(a.split("=", 1) for a in args[1:])
    for n in fields.pop("NodeName").split(","):
        if fields.get("State") == "DRAIN":
            nodes[n] = {"state": nodes[n]["state"].split("+")[0] + "+DRAIN", "reason": fields["Reason"]}
        elif fields.get("State") == "RESUME":
            nodes[n] = {"state": nodes[n]["state"].split("+")[0], "reason": ""}
        else:
            nodes[n].update(fields)
elif name == "scontrol" and args[0] == "requeue":
    for j in args[1].split(","):
        jobs.pop(j, None)
elif name == "squeue":
    on = set(args[args.index("-w") + 1].split(","))
    print("\n".join(j for j, where in jobs.items() if on & set(where)))
elif name == "scancel":
    for j in args:
        jobs.pop(j, None)
state_file.write_text(json.dumps(state))
"""


@pytest.fixture
def cluster(tmp_path: Path) -> dict[str, Any]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("scontrol", "squeue", "scancel"):
        (bin_dir / tool).write_text(FAKE)
        (bin_dir / tool).chmod(0o755)
    state = {"nodes": {"gpu01": {"state": "IDLE"}, "gpu02": {"state": "MIXED"}, "ctl01": {"state": "IDLE"},
                       "gpu09": {"state": "IDLE+DRAIN", "reason": "admin: bad DIMM"}},
             "jobs": {"101": ["gpu01"], "102": ["gpu02", "gpu09"], "200": ["ctl01"]}}
    (bin_dir / "slurm.json").write_text(json.dumps(state))
    policy = {"nodes": ["gpu01", "gpu02", "gpu09"], "reason_prefix": "bitten-cooling:",
              "scontrol": str(bin_dir / "scontrol"), "squeue": str(bin_dir / "squeue"),
              "scancel": str(bin_dir / "scancel"), "gpu_watts": {"gpu01": [100, 1000]},
              "gpu_power_command": [sys.executable, "-c", f"open({str(bin_dir / 'capped')!r}, 'a').write("
                                    "'{node} {watts}\\n')"]}
    etc = tmp_path / "etc"
    etc.mkdir(mode=0o755)
    (etc / "allowed.json").write_text(json.dumps(policy))
    return {"bin": bin_dir, "policy": etc / "allowed.json"}


def ask(cluster: dict[str, Any], request: Any, argv: list[str] | None = None) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    old = sys.stdout
    sys.stdout = out
    try:
        code = helper.main(argv or [], stdin=io.StringIO(request if isinstance(request, str) else json.dumps(request)),
                           policy_path=cluster["policy"])
    finally:
        sys.stdout = old
    return code, json.loads(out.getvalue())


def nodes(cluster: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads((cluster["bin"] / "slurm.json").read_text())["nodes"])


def test_drain_and_resume_the_loops_nodes_with_read_back(cluster: dict[str, Any]) -> None:
    code, answer = ask(cluster, {"action": "drain", "nodes": ["gpu01", "gpu02"], "reason": REASON})
    assert code == 0 and answer["nodes"]["gpu01"]["state"] == "IDLE+DRAIN"
    assert answer["nodes"]["gpu02"]["reason"] == REASON
    code, answer = ask(cluster, {"action": "resume", "nodes": ["gpu01", "gpu02"]})
    assert code == 0 and answer["nodes"]["gpu01"]["state"] == "IDLE" and answer["nodes"]["gpu02"]["state"] == "MIXED"


@pytest.mark.parametrize(("request_", "why"), [
    ({"action": "drain", "nodes": ["ctl01"], "reason": REASON}, "not a node of the agent's loops: ctl01"),
    ({"action": "drain", "nodes": ["gpu01,ctl01"], "reason": REASON}, "not a node of the agent's loops"),
    ({"action": "drain", "nodes": ["gpu[01-99]"], "reason": REASON}, "not a node of the agent's loops"),
    ({"action": "drain", "nodes": ["gpu01"], "reason": "bitten-cooling: x State=DOWN"}, "reason"),
    ({"action": "drain", "nodes": ["gpu01"], "reason": "maintenance"}, "reason: starts with"),
    ({"action": "drain", "nodes": ["gpu01"], "reason": "bitten-cooling: a\nb"}, "reason"),
    ({"action": "down", "nodes": ["gpu01"]}, "action: one of"),
    ({"action": "update", "nodes": ["gpu01"], "State": "DOWN"}, "action: one of"),
    ({"action": "drain", "nodes": ["gpu01"], "reason": REASON, "State": "DOWN"}, "not State"),
    ({"action": "resume", "nodes": ["gpu01"], "Weight": "1"}, "not Weight"),
    ({"action": "resume", "nodes": ["gpu09"]}, "not drained by the agent (left alone): gpu09"),
    ({"action": "cancel", "nodes": ["gpu01"], "jobs": ["200"]}, "not running on these nodes: 200"),
    ({"action": "cancel", "nodes": ["gpu01"], "jobs": ["101;rm"]}, "jobs: a non-empty list of job ids"),
    ({"action": "cap", "nodes": ["gpu01"], "watts": 5000}, "watts: a whole number within [100, 1000]"),
    ({"action": "cap", "nodes": ["gpu02"], "watts": 500}, "no GPU power range for gpu02"),
    ("not json", "not JSON"),
    ([1, 2], "JSON object"),
])
def test_everything_else_is_refused_before_anything_runs(cluster: dict[str, Any], request_: Any, why: str) -> None:
    before = nodes(cluster)
    code, answer = ask(cluster, request_)
    assert code == 2 and answer["ok"] is False and why in answer["refused"]
    assert nodes(cluster) == before
    calls = (cluster["bin"] / "calls").read_text().splitlines() if (cluster["bin"] / "calls").exists() else []
    assert not [c for c in calls if "update" in c or "scancel" in c or "requeue" in c]


def test_arguments_are_refused(cluster: dict[str, Any]) -> None:
    code, answer = ask(cluster, {"action": "resume", "nodes": ["gpu01"]}, argv=["--policy", "/tmp/mine.json"])
    assert code == 2 and "takes no arguments" in answer["refused"]


def test_a_policy_others_can_write_is_refused(cluster: dict[str, Any]) -> None:
    cluster["policy"].chmod(0o666)
    code, answer = ask(cluster, {"action": "resume", "nodes": ["gpu01"]})
    assert code == 2 and "writable by root only" in answer["refused"]


def test_jobs_and_caps(cluster: dict[str, Any]) -> None:
    code, answer = ask(cluster, {"action": "cancel", "nodes": ["gpu01", "gpu02"], "jobs": ["101", "102"]})
    assert code == 0 and answer["jobs_left"] == []
    code, answer = ask(cluster, {"action": "cap", "nodes": ["gpu01"], "watts": 600})
    assert code == 0 and (cluster["bin"] / "capped").read_text() == "gpu01 600\n"


def test_the_agent_asks_the_helper(cluster: dict[str, Any]) -> None:
    argv = [sys.executable, "-c", "import sys; from pathlib import Path; from bitten.cooling.helper import main; "
            f"sys.exit(main([], policy_path=Path({str(cluster['policy'])!r})))"]
    slurm = HelperSlurm(argv, [str(cluster["bin"] / "scontrol")])
    after = slurm.drain(["gpu01"], REASON)
    assert after["gpu01"].drained and after["gpu01"].reason == REASON
    assert not slurm.resume(["gpu01"])["gpu01"].drained
    with pytest.raises(SlurmError, match="refused drain: not a node of the agent's loops: ctl01"):
        slurm.drain(["ctl01"], REASON)


def test_the_policy_is_generated_from_the_site() -> None:
    site = load_site(REPO / "inventory" / "bitten")
    policy = json.loads(render_file(site, "/etc/bitten/cooling/allowed.json", "ctl01"))
    assert policy["nodes"] == sorted(n for loop in site.cooling.loops for n in site.loop_nodes(loop))
    assert "ctl01" not in policy["nodes"] and policy["reason_prefix"] == "bitten-cooling:"
    assert policy["gpu_watts"]["gpu01"] == [100, 1000]
