"""A polled device's state, and how a round of readings settles into it: the one home of the rules the node power
(bitten.energy.nodepower) and GPU power (bitten.energy.gpupower) pollers share -- a failure counts and is logged
at the 1st, 5th and every 50th in a row, a good reading resets the count and is recorded, a device without a good
reading for ``stale_after_s`` (since the poller started, when it never answered) is stale."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

R = TypeVar("R")


@dataclass
class PollState(Generic[R]):
    last_ok: float | None = None
    failures: int = 0
    errors_total: int = 0
    garbage_total: int = 0
    last_error: str = ""
    reading: R | None = None

    def stale(self, now: float, after: float, started: float) -> bool:
        return now - (self.last_ok if self.last_ok is not None else started) > after


def settle(states: Mapping[str, PollState[R]], results: Iterable[tuple[str, R | None, str]], now: float, *,
           what: str, log: logging.Logger, garbage: Callable[[R], int], record: Callable[[R], None]) -> None:
    """One round's results (name, reading or None, error) into the states; ``record`` each good reading."""
    for name, reading, error in results:
        st = states[name]
        if reading is None:
            st.failures += 1
            st.errors_total += 1
            st.last_error = error
            if st.failures in (1, 5) or st.failures % 50 == 0:
                log.warning("%s: %s poll failed (%d in a row): %s", name, what, st.failures, error)
            continue
        st.failures, st.last_ok, st.reading = 0, now, reading
        st.garbage_total += garbage(reading)
        record(reading)


def alarms(states: Mapping[str, PollState[R]], now: float, after: float, started: float) -> dict[str, str]:
    """name -> why, for every stale device."""
    out = {}
    for name, st in states.items():
        if st.stale(now, after, started):
            since = "never answered" if st.last_ok is None else f"no good reading for {now - st.last_ok:.0f} s"
            out[name] = f"{since} ({st.last_error or 'no error recorded'})"
    return out
