"""Fixtures for the UCloud tests: a Core test double on loopback, sites built from small inventories."""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bitten.capabilities import load_site
from bitten.core.pki import ServerTls, server_tls
from bitten.lab.doubles.ucloud_core import CoreDouble
from bitten.site import Site

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "admin-token-for-tests"


@pytest.fixture
def core() -> Iterator[CoreDouble]:
    with CoreDouble("127.0.0.1", 0, {ADMIN}) as double:
        yield double


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> ServerTls:
    """A test CA and a server certificate for 127.0.0.1."""
    return server_tls(tmp_path_factory.mktemp("tls"), ["127.0.0.1", "localhost"])


@pytest.fixture
def lab_site() -> Site:
    return load_site(ROOT / "inventory" / "lab")


def write_inventory(tmp: Path, ucloud: dict[str, Any] | None = None, partitions: list[dict[str, Any]] | None = None,
                    ) -> Path:
    """A copy of the lab inventory with bitten_ucloud (and partitions) replaced."""
    dest = tmp / "inv"
    subprocess.run(["cp", "-r", str(ROOT / "inventory" / "lab"), str(dest)], check=True)
    if ucloud is not None:
        (dest / "group_vars" / "all" / "ucloud.yml").write_text(yaml.safe_dump({"bitten_ucloud": ucloud}))
    if partitions is not None:
        slurm_file = dest / "group_vars" / "all" / "slurm.yml"
        data = yaml.safe_load(slurm_file.read_text())
        data["bitten_partitions"] = partitions
        slurm_file.write_text(yaml.safe_dump(data))
    return dest


def lab_ucloud() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load((ROOT / "inventory" / "lab" / "group_vars" / "all" / "ucloud.yml")
                                        .read_text())["bitten_ucloud"])
