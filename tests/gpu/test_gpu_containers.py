"""The container epilog removes this job's pyxis containers and nothing of any other job or user."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bitten.gpu import containers

UID = os.getuid()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    mine = root / f"user-{UID}"
    for name in ("pyxis_41.0", "pyxis_41.1", "pyxis_41_trainer", "pyxis_410.0", "pyxis_4.0", "pyxis_42.0",
                 "my-named-container"):
        (mine / name / "etc").mkdir(parents=True)
        (mine / name / "etc" / "hostname").write_text(name)
    other = root / f"user-{UID + 1}"
    (other / "pyxis_41.0").mkdir(parents=True)
    return root


def test_only_this_jobs_containers_go(data: Path) -> None:
    removed = containers.clean(data, UID, 41)
    assert sorted(p.name for p in removed) == ["pyxis_41.0", "pyxis_41.1", "pyxis_41_trainer"]
    left = sorted(p.name for p in (data / f"user-{UID}").iterdir())
    # job 410, job 4 and job 42 share a prefix or run at the same time; a named container is the user's to keep
    assert left == ["my-named-container", "pyxis_4.0", "pyxis_410.0", "pyxis_42.0"]
    assert (data / f"user-{UID + 1}" / "pyxis_41.0").exists()


def test_symlinks_are_never_followed(data: Path, tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep").write_text("x")
    (data / f"user-{UID}" / "pyxis_41.9").symlink_to(precious)
    (data / f"user-{UID}" / "pyxis_41.0" / "escape").symlink_to(precious)
    containers.clean(data, UID, 41)
    assert (precious / "keep").exists()
    assert (data / f"user-{UID}" / "pyxis_41.9").is_symlink()


def test_a_user_directory_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    target = tmp_path / "elsewhere"
    (target / "pyxis_41.0").mkdir(parents=True)
    (root / f"user-{UID}").symlink_to(target)
    with pytest.raises(PermissionError, match="not a directory owned by"):
        containers.clean(root, UID, 41)
    assert (target / "pyxis_41.0").exists()


def test_main_reads_the_job_from_slurmds_environment(data: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "containers.json"
    config.write_text(json.dumps({"data_path": str(data)}))
    env = {"SLURM_JOB_ID": "42", "SLURM_JOB_UID": str(UID)}
    assert containers.main(["epilog", str(config)], env) == 0
    assert not (data / f"user-{UID}" / "pyxis_42.0").exists()
    assert "removed" in capsys.readouterr().err


@pytest.mark.parametrize("env", [{}, {"SLURM_JOB_ID": "*", "SLURM_JOB_UID": "0"},
                                 {"SLURM_JOB_ID": "41", "SLURM_JOB_UID": "../0"}])
def test_an_unknown_job_touches_nothing(data: Path, tmp_path: Path, env: dict[str, str]) -> None:
    config = tmp_path / "containers.json"
    config.write_text(json.dumps({"data_path": str(data)}))
    before = sorted(p.name for p in (data / f"user-{UID}").iterdir())
    assert containers.main([str(config)], env) == 0
    assert sorted(p.name for p in (data / f"user-{UID}").iterdir()) == before


def test_a_broken_config_fails_the_epilog(tmp_path: Path) -> None:
    assert containers.main([str(tmp_path / "missing.json")], {"SLURM_JOB_ID": "1", "SLURM_JOB_UID": "0"}) == 1


def test_the_prolog_makes_private_per_user_directories(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the prolog runs as root")
    paths = [tmp_path / "run", tmp_path / "data"]
    made = containers.prepare(paths, 2001, 2001)
    assert made == [tmp_path / "run/user-2001", tmp_path / "data/user-2001"]
    for path in made:
        info = path.stat()
        assert (info.st_uid, info.st_mode & 0o777) == (2001, 0o700)
    assert containers.prepare(paths, 2001, 2001) == []  # a second job of the same user


def test_the_prolog_refuses_a_directory_another_user_made(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the prolog runs as root")
    base = tmp_path / "data"
    base.mkdir(mode=0o755)
    squat = base / "user-2001"
    squat.mkdir()
    os.chown(squat, 2002, 2002)
    with pytest.raises(PermissionError, match="not a directory owned by uid 2001"):
        containers.prepare([base], 2001, 2001)
    world = tmp_path / "open"
    world.mkdir()
    world.chmod(0o1777)
    with pytest.raises(PermissionError, match="only root can write"):
        containers.prepare([world], 2001, 2001)
