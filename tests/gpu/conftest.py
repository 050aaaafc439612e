from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gpu"
DOUBLES = Path(__file__).resolve().parents[1] / "doubles"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES
