from __future__ import annotations

import pytest

from bitten.gpu.drivers import branch_of, driver_problems


@pytest.mark.parametrize(("version", "branch"), [("580", 580), (575, 575), ("580.65.06", 580),
                                                 ("550.163.01-2", 550), ("1:580.82.07-1", 580)])
def test_branch_of(version: str | int, branch: int) -> None:
    assert branch_of(version) == branch


def test_b200_refuses_debian_550() -> None:
    problems = driver_problems("blackwell", "550.163.01-2")
    assert len(problems) == 1
    assert "too old for blackwell GPUs (e.g. B200)" in problems[0]
    assert "570 or newer" in problems[0]
    assert "gpu_driver_branch" in problems[0]


def test_b200_needs_open_modules() -> None:
    assert driver_problems("blackwell", 580) == []
    problems = driver_problems("blackwell", 580, "proprietary")
    assert problems == ["blackwell GPUs (e.g. B200) work only with the open kernel modules; "
                        "set gpu_driver_kernel_modules: open"]


def test_volta_range_and_modules() -> None:
    assert driver_problems("volta", 535, "proprietary") == []
    assert any("R580 is the last branch" in p for p in driver_problems("volta", 590, "proprietary"))
    assert any("open kernel modules do not support" in p for p in driver_problems("volta", 535, "open"))


def test_bad_values_are_named() -> None:
    assert "unknown GPU architecture 'kepler'" in driver_problems("kepler", 580)[0]
    assert driver_problems("hopper", "latest", what="gpu_driver_version")[0].startswith("gpu_driver_version:")
    assert "gpu_driver_kernel_modules" in driver_problems("hopper", 580, "closed")[0]
