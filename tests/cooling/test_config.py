"""The agent's configuration: generated from the site model (what `bitten render` shows), validated on load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bitten.capabilities import load_site, render_file
from bitten.cli import app
from bitten.cooling.config import AgentConfigError, load_config, parse_config
from bitten.lab.doubles.slurm import MemorySlurm

REPO = Path(__file__).resolve().parents[2]
PATH = "/etc/bitten/cooling/agent.yaml"


@pytest.mark.parametrize("inventory", ["lab", "bitten"])
def test_rendered_config_loads(inventory: str) -> None:
    site = load_site(REPO / "inventory" / inventory)
    host = site.cooling_agent_hosts[0]
    assert host == site.controllers[0]
    cfg = parse_config(yaml.safe_load(render_file(site, PATH, host)))
    assert set(cfg.cdus) == set(site.cooling.cdus) and set(cfg.loops) == set(site.cooling.loops)
    for name in site.cooling.loops:
        assert [n.name for n in cfg.loops[name].nodes] == site.loop_nodes(name)
    assert cfg.listen == str(site.nodes[host].ip) and not cfg.writes_enabled
    assert cfg.scontrol == ("/usr/bin/scontrol",)  # reading needs no privilege
    assert cfg.helper == ("sudo", "-n", "/opt/bitten-cooling/bin/python", "-I", "-m", "bitten.cooling.helper")
    if inventory == "bitten":
        assert cfg.loops["dlc-a"].actions["high_supply_temperature"].cap_gpu_power_percent == 60
        assert cfg.loops["dlc-a"].nodes[0].gpus == 8 and cfg.loops["dlc-a"].nodes[0].gpu_max_power_watts == 1000
        assert cfg.cdus["cdu-a"].password == "<secret:cooling_cdu_cdu-a_password>"  # a placeholder in review
        assert cfg.ledger.reused_heat[0].register_name == "energy"
    with pytest.raises(KeyError):
        render_file(site, PATH, "gpu01" if inventory == "bitten" else "lab-gpu01")  # only the agent host


def test_secrets_are_filled_and_quoted() -> None:
    site = load_site(REPO / "inventory" / "bitten")
    secrets = {f"cooling_cdu_{n}_password": "it's \"odd\": #1" for n in site.cooling.cdus}
    cfg = parse_config(yaml.safe_load(render_file(site, PATH, "ctl01", secrets)))
    assert cfg.cdus["cdu-b"].password == "it's \"odd\": #1"
    with pytest.raises(KeyError, match="cooling_cdu_cdu-a_password"):
        render_file(site, PATH, "ctl01", {})


def test_bad_config_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({"site": "x", "loops": {"l": {"cdu": "nope", "actions": {}}}}))
    with pytest.raises(AgentConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and "loops.l" in str(err.value)
    path.write_text("site: [unclosed")
    with pytest.raises(AgentConfigError, match="not valid YAML"):
        load_config(path)
    with pytest.raises(AgentConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_validate_command(tmp_path: Path) -> None:
    site = load_site(REPO / "inventory" / "lab")
    path = tmp_path / "agent.yaml"
    path.write_text(render_file(site, PATH, "lab-ctl"))
    result = CliRunner().invoke(app, ["cooling", "validate", str(path)])
    assert result.exit_code == 0 and "valid" in result.output and "disabled" in result.output
    path.write_text(path.read_text().replace("poll_interval_s: 5.0", "poll_interval_s: -1"))
    assert CliRunner().invoke(app, ["cooling", "validate", str(path)]).exit_code == 2


def test_memory_slurm_semantics() -> None:
    slurm = MemorySlurm(["a"])
    assert slurm.drain(["a"], "x")["a"].state == "IDLE+DRAIN"
    assert slurm.node_states(["a"])["a"].state == "IDLE+DRAIN"
    assert slurm.resume(["a"])["a"].state == "IDLE"
    slurm.jobs = {"1": ("a",), "2": ("b",)}
    assert slurm.jobs_on(["a"]) == ["1"] and slurm.cancel(["1"], ["a"]) == [] and slurm.jobs == {"2": ("b",)}


FAKE_SLURM = r"""#!/usr/bin/env python3
# scontrol as Slurm behaves with one node not responding: `update ... state=resume` lifts every drain, then exits
# 1 with "Invalid node state specified" for the node that does not respond (a TEST DOUBLE of that behaviour)
import json, sys
from pathlib import Path
state = Path(sys.argv[0]).with_suffix(".json")
nodes = json.loads(state.read_text())
args = sys.argv[1:]
if args[:2] == ["show", "node"]:
    for name in args[3].split(","):
        if name in nodes:
            n = nodes[name]
            print(f"NodeName={name} State={n['state']} Reason={n.get('reason') or '(null)'}")
    sys.exit(0)
if args[0] == "update":
    names = args[1].split("=", 1)[1].split(",")
    fields = {k.lower(): v.lower() for k, v in (a.split("=", 1) for a in args[2:])}
    failed = False
    for name in names:
        n = nodes[name]
        if fields.get("state") == "resume":
            n["state"] = "+".join(f for f in n["state"].split("+") if f != "DRAIN")
            n["reason"] = ""
            failed = failed or "NOT_RESPONDING" in n["state"]
    state.write_text(json.dumps(nodes))
    if failed:
        print("slurm_update error: Invalid node state specified", file=sys.stderr)
        sys.exit(1)
"""


def test_resume_reports_what_slurm_did(tmp_path: Path) -> None:
    fake = tmp_path / "scontrol"
    fake.write_text(FAKE_SLURM)
    fake.chmod(0o755)
    reason = "bitten-cooling: leak on cdu-a (loop dlc-a): leak detected by Moisture"
    fake.with_suffix(".json").write_text(json.dumps({
        "gpu01": {"state": "IDLE+DRAIN", "reason": reason},
        "gpu02": {"state": "DOWN+DRAIN+NOT_RESPONDING", "reason": reason}}))
    site = load_site(REPO / "inventory" / "lab")
    cfg = parse_config(yaml.safe_load(render_file(site, PATH, "lab-ctl")))
    loop = next(iter(cfg.loops))
    nodes = [{"name": "gpu01"}, {"name": "gpu02"}]
    raw = cfg.model_dump(mode="json", by_alias=True)
    raw["scontrol"] = [str(fake)]
    raw["helper"] = []  # scontrol directly: the helper and its sudo rule are the Molecule scenario's
    raw["loops"][loop]["nodes"] = nodes
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(app, ["cooling", "resume", loop, "--config", str(path)])
    # scontrol exited 1, but every drain was lifted: the resume succeeded, and the command says so
    assert result.exit_code == 0, result.output
    assert "resumed gpu01, gpu02" in result.output
    assert "not responding" in result.output and "gpu02 DOWN+NOT_RESPONDING" in result.output
    # a drain that stays: exit 1, naming the node and its state
    fake.with_suffix(".json").write_text(json.dumps({"gpu01": {"state": "IDLE+DRAIN", "reason": reason}}))
    fake.write_text(FAKE_SLURM.replace('f != "DRAIN"', 'True'))
    result = CliRunner().invoke(app, ["cooling", "resume", loop, "--config", str(path)])
    assert result.exit_code == 1 and "Slurm still shows drained: gpu01 IDLE+DRAIN" in result.output
