"""The agent's configuration: generated from the site model (what `bitten render` shows), validated on load."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bitten.capabilities import load_site, render_file
from bitten.cli import app
from bitten.cooling.config import ConfigError, load_config, parse_config
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
    assert cfg.scontrol == ("sudo", "-n", "/usr/bin/scontrol")
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
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and "loops.l" in str(err.value)
    path.write_text("site: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read"):
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
    assert slurm.node_states(["a"])["a"].state == "IDLE"
