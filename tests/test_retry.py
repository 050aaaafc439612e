"""bitten.core.retry: the one backoff/deadline helper (standard library only, so node-side code can carry it)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bitten.core import retry
from bitten.core.retry import Backoff, Deadline, attempts_of, call

ROOT = Path(__file__).resolve().parents[1]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_delays_grow_are_capped_and_jittered() -> None:
    policy = Backoff(initial=1.0, maximum=8.0, multiplier=2.0, jitter=0.0)
    assert [policy.delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    jittered = Backoff(initial=10.0, maximum=60.0, jitter=0.2)
    for n, (low, high) in {1: (8, 12), 2: (16, 24), 10: (48, 72)}.items():
        assert all(low <= jittered.delay(n) <= high for _ in range(50))
    assert Backoff(initial=5.0, maximum=1.0, jitter=0.0).delay(3) == 5.0, "a cap below the first delay keeps it"


def test_call_retries_what_it_may_and_reports_the_attempts() -> None:
    clock = Clock()
    failures = iter([OSError("reset"), OSError("reset")])

    def flaky() -> str:
        error = next(failures, None)
        if error is not None:
            raise error
        return "ok"

    seen: list[int] = []
    policy = Backoff(attempts=5, initial=0.5, jitter=0.0)
    assert call(flaky, policy, lambda e: isinstance(e, OSError), sleep=clock.sleep, clock=clock,
                on_retry=lambda attempt, _e, _d: seen.append(attempt)) == "ok"
    assert clock.slept == [0.5, 1.0] and seen == [1, 2]


def test_call_stops_at_attempts_refusals_and_the_deadline() -> None:
    clock = Clock()

    def broken() -> None:
        raise OSError("down")

    with pytest.raises(OSError) as exhausted:
        call(broken, Backoff(attempts=3, initial=0.1, jitter=0.0), lambda e: True, sleep=clock.sleep, clock=clock)
    assert attempts_of(exhausted.value) == 3

    with pytest.raises(ValueError) as refused:
        call(lambda: int("x"), Backoff(attempts=9), lambda e: isinstance(e, OSError), sleep=clock.sleep, clock=clock)
    assert attempts_of(refused.value) == 1, "an error retry_if declines is raised at once"

    clock = Clock()
    with pytest.raises(OSError) as late:
        call(broken, Backoff(attempts=100, initial=1.0, maximum=4.0, jitter=0.0, deadline=10.0), lambda e: True,
             sleep=clock.sleep, clock=clock)
    assert clock.now == 7.0 and attempts_of(late.value) == 4, "4 attempts, 1+2+4 s apart; 4 s more would pass 10 s"


def test_a_retry_after_within_the_policy_is_honoured() -> None:
    clock = Clock()
    tries = iter([True, False])

    def busy() -> str:
        if next(tries):
            raise OSError("503")
        return "ok"

    call(busy, Backoff(initial=0.1, maximum=5.0, jitter=0.0), lambda e: True, sleep=clock.sleep, clock=clock,
         delay_for=lambda e: 3.0)
    assert clock.slept == [3.0]


def test_deadline_caps_timeouts() -> None:
    clock = Clock()
    deadline = Deadline(2.0, clock)
    assert deadline.cap(10.0) == 2.0 and not deadline.expired
    clock.now = 5.0
    assert deadline.expired and deadline.remaining() == 0.0 and deadline.cap(10.0) == 0.001
    assert Deadline(None, clock).cap(7.0) == 7.0


def test_the_module_uses_the_standard_library_only() -> None:
    """Node-side code (the GPU health check) runs without the venv: no third-party import, not even tenacity."""
    tree = ast.parse(Path(retry.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert imported <= {"__future__", "math", "random", "time", "collections", "dataclasses", "typing"}


def test_no_other_hand_written_backoff_in_the_tree() -> None:
    """One helper: no urllib3 Retry, no `delay * 2` loops outside bitten.core.retry."""
    offenders = []
    for path in (ROOT / "src" / "bitten").rglob("*.py"):
        if path.name == "retry.py" and path.parent.name == "core":
            continue
        text = path.read_text()
        for needle in ("urllib3.util.retry", "from urllib3 import Retry", "backoff * 2", "delay * 2 **",
                       "2 ** max(0, failures"):
            if needle in text:
                offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert offenders == []
