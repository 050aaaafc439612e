"""The compiled-template cache: kept between runs only in a directory that is the user's own and private (what it
holds is loaded as code), and the same output with it as without."""

from __future__ import annotations

import os
from pathlib import Path

import jinja2
import pytest

from bitten.core import templating


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("BITTEN_NO_CACHE", raising=False)
    return tmp_path


def test_the_cache_directory_is_made_private(cache_home: Path) -> None:
    cache = templating.bytecode_cache()
    assert isinstance(cache, jinja2.FileSystemBytecodeCache)
    root = cache_home / "bitten" / "jinja"
    assert root.is_dir() and root.stat().st_mode & 0o777 == 0o700


def test_a_directory_others_can_write_is_not_used(cache_home: Path) -> None:
    root = cache_home / "bitten" / "jinja"
    root.mkdir(parents=True)
    os.chmod(root, 0o770)
    assert templating.bytecode_cache() is None


def test_no_cache_when_asked(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BITTEN_NO_CACHE", "1")
    assert templating.bytecode_cache() is None
    assert not (cache_home / "bitten").exists()


def test_a_template_renders_the_same_from_the_cache(cache_home: Path, tmp_path: Path) -> None:
    (tmp_path / "t.j2").write_text("{% for h in hosts %}{{ h }}\n{% endfor %}{{ hosts | hostlist }}\n")
    outputs = []
    for _ in range(2):  # compiled and stored, then loaded from the cache
        templating.environment.cache_clear()
        outputs.append(templating.environment(str(tmp_path)).get_template("t.j2").render(hosts=["n2", "n1"]))
    templating.environment.cache_clear()
    assert outputs == ["n2\nn1\nn[1-2]\n"] * 2
    assert any((cache_home / "bitten" / "jinja").iterdir())
