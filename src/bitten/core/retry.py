"""Backoff and deadlines: the one retry helper of the whole tree (standard library only).

Every client in bitten that retries uses this module: the Redfish connector (BMCs, CDUs, PDUs), the UCloud/Core
client, the cooling agent's per-device schedule and its event-stream reconnects. It is standard library only so
that node-side code (the GPU health check, which runs without the project's venv) can use it too; that is why it
is not tenacity, which would need a second, stdlib path for those callers.

- :class:`Backoff` is the policy: how many attempts, the first delay, growth, a cap, +/- jitter (so a fleet does not
  retry in lock-step) and an optional deadline over all attempts. ``delay(n)`` is the wait after the n-th failure;
  a scheduler that never sleeps (the agent's poll loop) uses it directly.
- :class:`Deadline` is a wall-clock budget on the monotonic clock; ``cap(timeout)`` trims a per-operation timeout
  to what is left.
- :func:`call` runs a function until it succeeds, the policy's attempts or deadline run out, or it raises an error
  that ``retry_if`` declines. It never decides what is safe to repeat: callers pass a ``retry_if`` that refuses
  non-idempotent requests (a reset, a power action, a POST) unless the request surely never left the machine.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

Clock = Callable[[], float]
Sleep = Callable[[float], None]


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter, ``attempts`` in all (1: no retry), within ``deadline`` seconds if set."""

    attempts: int = 5
    initial: float = 0.5
    maximum: float = 10.0
    multiplier: float = 2.0
    #: +/- this fraction of each delay
    jitter: float = 0.2
    #: seconds from the first attempt after which no further attempt starts (None: attempts alone decide)
    deadline: float | None = None

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("Backoff.attempts must be at least 1")
        if self.initial < 0 or self.maximum < 0 or self.multiplier < 1 or not 0 <= self.jitter < 1:
            raise ValueError("Backoff needs initial, maximum >= 0, multiplier >= 1 and 0 <= jitter < 1")

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failures (1-based), jittered."""
        exponent = max(0, failures - 1)
        base = self.initial * self.multiplier ** min(exponent, 64)
        capped = min(max(self.maximum, self.initial), base)
        if self.jitter:
            capped *= 1 + random.uniform(-self.jitter, self.jitter)
        return max(0.0, capped)


class Deadline:
    """A wall-clock budget: ``remaining()`` seconds left (inf without a limit), never negative."""

    __slots__ = ("_clock", "end", "seconds")

    def __init__(self, seconds: float | None, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self.seconds = seconds
        self.end = math.inf if seconds is None else clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self.end - self._clock())

    @property
    def expired(self) -> bool:
        return self._clock() >= self.end

    def cap(self, timeout: float) -> float:
        """``timeout`` trimmed to what is left (a tiny positive floor: 0 means "block forever" to sockets)."""
        return max(0.001, min(timeout, self.remaining()))


def call(fn: Callable[[], T], backoff: Backoff, retry_if: Callable[[BaseException], bool], *,
         sleep: Sleep = time.sleep, clock: Clock = time.monotonic,
         on_retry: Callable[[int, BaseException, float], None] | None = None,
         delay_for: Callable[[BaseException], float | None] | None = None) -> T:
    """``fn()`` with retries. The last error propagates with ``retry_attempts`` (how many attempts ran) set on it.

    ``retry_if(error)`` says whether an error may be retried at all; ``on_retry(attempt, error, delay)`` is told
    before each wait (for logs and counters); ``delay_for(error)`` may give a server-requested delay (Retry-After),
    used instead of the backoff's when it is not longer than the backoff's maximum.
    """
    deadline = Deadline(backoff.deadline, clock)
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:
            exc.retry_attempts = attempt  # type: ignore[attr-defined]
            if attempt >= backoff.attempts or not retry_if(exc):
                raise
            wait = backoff.delay(attempt)
            asked = delay_for(exc) if delay_for is not None else None
            if asked is not None and 0 <= asked <= max(backoff.maximum, backoff.initial):
                wait = asked
            if wait >= deadline.remaining():
                raise
            if on_retry is not None:
                on_retry(attempt, exc, wait)
            sleep(wait)


def attempts_of(error: BaseException) -> int:
    """How many attempts :func:`call` made before ``error`` reached the caller (1 when it did not run)."""
    return int(getattr(error, "retry_attempts", 1))
