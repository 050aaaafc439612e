"""Every role has an argument spec, and its README's variables section is the one scripts/role-docs writes from
that spec: a README that drifts from its spec fails here."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir())
SCRIPT = ROOT / "scripts" / "role-docs"


def role_docs(*args: str, roles_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ROLES_DIR": str(roles_dir or ROOT / "roles")}
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env, check=False)


@pytest.mark.parametrize("role", ROLES)
def test_every_role_has_a_spec_and_a_generated_variables_section(role: str) -> None:
    spec = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    assert "main" in spec["argument_specs"]
    readme = (ROOT / "roles" / role / "README.md").read_text()
    assert "<!-- ANSIBLE DOCSMITH MAIN START -->" in readme and "<!-- ANSIBLE DOCSMITH MAIN END -->" in readme


@pytest.mark.parametrize("role", ROLES)
def test_readme_matches_its_spec(role: str) -> None:
    result = role_docs("--check", role)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_changed_spec_makes_the_readme_drift_until_it_is_regenerated(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "roles" / "munge", tmp_path / "munge")
    spec_file = tmp_path / "munge" / "meta" / "argument_specs.yml"
    spec_file.write_text(spec_file.read_text().replace("munged worker threads", "munged's worker threads"))
    drifted = role_docs("--check", "munge", roles_dir=tmp_path)
    assert drifted.returncode == 1 and "munge/README.md: variables section differs" in drifted.stdout
    assert role_docs("munge", roles_dir=tmp_path).returncode == 0
    assert "munged's worker threads" in (tmp_path / "munge" / "README.md").read_text()
    assert role_docs("--check", "munge", roles_dir=tmp_path).returncode == 0


def test_a_default_missing_from_the_spec_is_refused(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "roles" / "munge", tmp_path / "munge")
    defaults = tmp_path / "munge" / "defaults" / "main.yml"
    defaults.write_text(defaults.read_text() + "munge_undocumented: 1\n")
    result = role_docs("--check", "munge", roles_dir=tmp_path)
    assert result.returncode == 1 and "munge_undocumented" in result.stdout
