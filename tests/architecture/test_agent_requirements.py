"""The roles that install bitten on an agent host (cooling_agent, energy_controller) install every library the
agent's code imports: the wheel is installed without its dependencies (--no-deps) into a virtualenv built from the
role's own requirement list, so a library the code needs and the list lacks fails only on the host, at start."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import grimp
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

#: distribution name -> the module it is imported as
IMPORT_NAME = {"prometheus-client": "prometheus_client", "pyyaml": "yaml", "python-hostlist": "hostlist"}
#: imported by modules the agent reaches, but never on its paths: bitten.site.inventory imports Ansible inside the
#: functions that read an Ansible inventory (the agent reads its serialised config); urllib3 comes with requests
NOT_ON_THE_AGENT = {"ansible", "urllib3"}


def _declared(role: str, prefix: str) -> set[str]:
    defaults = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())
    names = set()
    for requirement in defaults[f"{prefix}_requirements"] + defaults[f"{prefix}_source_requirements"]:
        dist = re.split(r"[<>=!~ \[]", requirement, maxsplit=1)[0].lower()
        names.add(IMPORT_NAME.get(dist, dist.replace("-", "_")))
    return names


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("bitten", include_external_packages=True)


@pytest.mark.parametrize(("role", "prefix", "entry"), [
    ("cooling_agent", "cooling_agent", "bitten.cooling.cli"),
    ("energy_controller", "energy_controller", "bitten.energy.cli"),
])
def test_the_role_installs_what_the_agent_imports(graph: grimp.ImportGraph, role: str, prefix: str,
                                                  entry: str) -> None:
    reached = graph.find_upstream_modules(entry) | {entry}
    third_party = {m.split(".")[0] for m in reached if not m.startswith("bitten")} - set(sys.stdlib_module_names)
    missing = third_party - NOT_ON_THE_AGENT - _declared(role, prefix)
    assert not missing, f"roles/{role}/defaults/main.yml {prefix}_requirements lacks {sorted(missing)}"
