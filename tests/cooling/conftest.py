"""Shared fixtures: the DMTF CDU mockup served read-only, the CDU simulator, a Modbus server, agent configs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bitten.lab.doubles.cdu import CduSimulator, ConstantLoad, Plant, serve_cdus
from bitten.lab.doubles.mockup import serve_mockup
from bitten.lab.doubles.modbus import ModbusSim
from bitten.lab.httpserve import Server, base_url, in_thread
from bitten.site.model import RegisterMap

from .helpers import ELECTRICITY_MAP, HEAT_METER_MAP

REPO = Path(__file__).resolve().parents[2]


def fixtures_dir() -> Path:
    """tests/fixtures (the mockups the repository ships), else shared/fixtures beside the checkout;
    BITTEN_FIXTURES overrides."""
    if os.environ.get("BITTEN_FIXTURES"):
        return Path(os.environ["BITTEN_FIXTURES"])
    if (REPO / "tests" / "fixtures" / "redfish-mockups" / "public-cooling-unit").is_dir():
        return REPO / "tests" / "fixtures"
    for parent in REPO.parents:
        candidate = parent / "shared" / "fixtures"
        if candidate.is_dir():
            return candidate
    pytest.fail("shared/fixtures not found beside the checkout; set BITTEN_FIXTURES")


@pytest.fixture(scope="session")
def mockup_dir() -> Path:
    return fixtures_dir() / "redfish-mockups" / "public-cooling-unit"


@pytest.fixture(scope="session")
def mockup_url(mockup_dir: Path) -> Iterator[str]:
    server = serve_mockup(mockup_dir)
    in_thread(server)
    yield base_url(server)
    server.shutdown()


@pytest.fixture
def cdu_sim() -> Iterator[tuple[CduSimulator, Server]]:
    sim = CduSimulator([Plant(ConstantLoad(60.0))], username="agent", password="s3cret")
    server = serve_cdus(sim)
    in_thread(server)
    yield sim, server
    server.shutdown()


@pytest.fixture
def modbus_sim() -> Iterator[ModbusSim]:
    sim = ModbusSim({1: RegisterMap.model_validate(HEAT_METER_MAP), 2: RegisterMap.model_validate(ELECTRICITY_MAP),
                     3: RegisterMap.model_validate(ELECTRICITY_MAP)}).start()
    yield sim
    sim.stop()


