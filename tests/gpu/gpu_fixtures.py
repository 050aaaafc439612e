"""Where the GPU tests find their fixtures (tests/fixtures/gpu) and test doubles (tests/doubles)."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gpu"
DOUBLES = Path(__file__).resolve().parents[1] / "doubles"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()
