"""Actuators report what the device read back: a CDU's set point within its AllowableMin/Max, holds that did not
take, a node tool that answers garbage."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest

from bitten.cooling.redfish import CduReading, Connector, Control
from bitten.energy.actuators import GpuCapper, Holder, Setpoint, Stopping, stoppable_sleep

from .memory_slurm import MemorySlurm


@dataclass
class FakeCdu:
    set_point: float = 40.0
    low: float | None = 30.0
    high: float | None = 45.0
    accept: bool = True
    writes: list[float] = field(default_factory=list)

    def read(self) -> CduReading:
        r = CduReading("cdu-a", 0.0)
        r.connectors.append(Connector("secondary", "1", "OK", 40.0, 50.0, None, 100.0, None,
                                      Control(self.set_point, self.low, self.high, "Automatic")))
        return r

    def set_supply_temperature(self, value: float, *, side: str = "secondary", writes_enabled: bool) -> float:
        assert writes_enabled and side == "secondary"
        self.writes.append(value)
        if self.accept:
            self.set_point = value
        return value


def test_setpoint_within_the_range_read_back() -> None:
    cdu = FakeCdu()
    r = Setpoint("cdu-a", cdu, "secondary", sleep=lambda s: None).apply(42.0)
    assert r.ok and r.reported == 42.0 and cdu.writes == [42.0]


def test_setpoint_outside_the_range_is_refused_before_writing() -> None:
    cdu = FakeCdu(high=41.0)
    r = Setpoint("cdu-a", cdu, "secondary", sleep=lambda s: None).apply(42.0)
    assert not r.ok and "outside the CDU's allowable range [30, 41]" in r.error and cdu.writes == []
    cdu = FakeCdu(low=None)
    r = Setpoint("cdu-a", cdu, "secondary", sleep=lambda s: None).apply(42.0)
    assert not r.ok and "no AllowableMin/AllowableMax" in r.error


def test_a_setpoint_the_cdu_does_not_take_is_reported() -> None:
    cdu = FakeCdu(accept=False)
    r = Setpoint("cdu-a", cdu, "secondary", sleep=lambda s: None).apply(42.0)
    assert not r.ok and r.reported == 40.0 and "reports a set point of 40.0" in r.error


def test_a_hold_that_does_not_take_is_reported_and_not_counted_as_ours() -> None:
    slurm = MemorySlurm(jobs={"flex": {"1": "Priority", "2": "JobHeldUser"}})
    holder = Holder(slurm, 1.0, lambda s: None)
    slurm.fail.add("hold")
    r = holder.hold("flex")
    assert not r.ok and "scontrol hold" in r.error and holder.held.get("flex", set()) == set()
    slurm.fail.clear()
    r = holder.hold("flex")
    assert r.ok and r.requested == ["1"]  # job 2 was held by its user: not ours, never released by us
    r = holder.release("flex")
    assert r.ok and slurm.calls[-1] == ("release", ("1",)) and slurm.jobs["flex"]["2"] == "JobHeldUser"


@pytest.mark.parametrize("output, error", [("not json", "exit 0: not json"), ("", "no output"),
                                           ('{"error": "nvidia-smi: exit 9"}', "nvidia-smi: exit 9")])
def test_a_node_tool_that_answers_garbage(output: str, error: str) -> None:
    capper = GpuCapper(["{node}", "--watts", "{watts}"], deadline_s=0.2, sleep=lambda s: None,
                       runner=lambda argv, timeout: (0, output))
    r = capper.apply("gpu01", 700)
    assert not r.ok and error in r.error and r.reported is None and r.attempts >= 1


def test_read_only_argv() -> None:
    capper = GpuCapper(["ssh", "{node}", "sudo", "-n", "/usr/local/sbin/bitten-gpu-power", "--watts", "{watts}"])
    assert capper._argv("gpu01", None) == ["ssh", "gpu01", "sudo", "-n", "/usr/local/sbin/bitten-gpu-power", "--read"]
    assert capper._argv("gpu01", 700)[-2:] == ["--watts", "700"]


def test_a_stop_ends_every_actuators_retries_after_the_attempt_that_failed() -> None:
    """The controller stops (SIGTERM) while an actuator retries a failing node under a long deadline: no further
    attempt, no waiting out the deadline (systemd would kill the controller mid-action), the report says why."""
    stop = threading.Event()
    calls: list[list[str]] = []

    def refused(argv: list[str], timeout: float) -> tuple[int, str]:
        calls.append(argv)
        stop.set()  # the stop arrives while this attempt runs
        return 255, "ssh: connect to host gpu01 port 22: Connection refused"

    capper = GpuCapper(["{node}", "--watts", "{watts}"], deadline_s=3600, sleep=stoppable_sleep(stop), runner=refused)
    r = capper.apply("gpu01", 700)
    assert not r.ok and len(calls) == 1 and "stopping" in r.error and r.reported is None

    slurm = MemorySlurm(jobs={"flex": {"1": "Priority"}})
    slurm.fail.add("pending")
    r = Holder(slurm, 3600, stoppable_sleep(stop)).hold("flex")
    assert not r.ok and "stopping" in r.error and len(slurm.calls) <= 1

    nap = stoppable_sleep(threading.Event())
    nap(0)  # not stopping: an ordinary wait
    with pytest.raises(Stopping):
        stoppable_sleep(stop)(3600)
