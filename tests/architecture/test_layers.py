"""The layer contract (pyproject.toml [tool.importlinter]) holds, and it catches the violations it exists for."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    return subprocess.run([str(LINT), "--config", str(tree / "pyproject.toml"), "--no-cache"], cwd=tree, env=env,
                          capture_output=True, text=True, check=False)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the package and the contract, to break on purpose."""
    shutil.copytree(ROOT / "src" / "bitten", tmp_path / "src" / "bitten",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_the_contract(tree: Path) -> None:
    proc = _lint(tree)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout


@pytest.mark.parametrize(("module", "line", "reported"), [
    # a capability reaching into the lab (its stand-ins)
    ("cooling/agent.py", "import bitten.lab.doubles.cdu", "bitten.cooling is not allowed to import bitten.lab"),
    # site/ importing a capability
    ("site/build.py", "import bitten.slurm.conf", "bitten.site is not allowed to import bitten.slurm"),
    # one capability importing another instead of going through the core
    ("ucloud/check.py", "import bitten.hardware.fleet", "bitten.ucloud is not allowed to import bitten.hardware"),
    # the core importing a capability
    ("core/files.py", "import bitten.cooling.config", "bitten.core is not allowed to import bitten.cooling"),
])
def test_a_violation_breaks_the_contract(tree: Path, module: str, line: str, reported: str) -> None:
    path = tree / "src" / "bitten" / module
    path.write_text(path.read_text() + f"\n{line}  # deliberate violation\n")
    proc = _lint(tree)
    assert proc.returncode != 0
    assert reported in proc.stdout, proc.stdout
