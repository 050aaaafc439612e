"""Shared fixtures: paths, a copy-and-break helper for inventories."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INVENTORIES = ROOT / "inventory"
BROKEN = Path(__file__).resolve().parent / "inventories"


@pytest.fixture
def inventory_copy(tmp_path: Path) -> Callable[[str], Path]:
    """Copy inventory/<name> into tmp_path and return the copy, for tests that edit it."""

    def copy(name: str) -> Path:
        dest = tmp_path / name
        shutil.copytree(INVENTORIES / name, dest)
        return dest

    return copy
