"""Policy semantics, once: when a trigger is on, when a policy is active, and the minimum hold and release times.

The controller evaluates one moment at a time (:class:`PolicyMachine`); the simulator evaluates a whole trace at
once (:func:`active_mask`). Both follow the same rules, and a test holds them equal on the same trace:

- A trigger ``above X`` turns on when the signal is above X and off when it is at or below X - hysteresis (``below``
  mirrors it); in between it keeps its state. ``top_hours N`` (price only) is on while the current period is among
  the day's N*4 most expensive quarter-hours; it has no hysteresis (the day's ranking is known in advance).
- A signal that is not usable (down, stale, garbage, missing) leaves the trigger unknown. A policy with an unknown
  trigger keeps its state: unknown never switches anything on or off (no guess), and the controller alarms.
- ``match: any`` is active when any trigger is on (and none unknown that could matter); ``all`` when all are on.
- Once active, a policy stays active at least ``min_hold_s``; once released, it stays released ``min_release_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bitten.site.model import Policy, Trigger

Bools = npt.NDArray[np.bool_]
F64 = npt.NDArray[np.float64]


def trigger_on(trigger: Trigger, value: float | None, previous: bool | None, rank: int | None = None,
               periods_per_hour: int = 4) -> bool | None:
    """The trigger's state now (None: unknown) given the signal's value (or, for top_hours, the price's rank)."""
    if trigger.top_hours is not None:
        if rank is None:
            return None
        return rank <= trigger.top_hours * periods_per_hour
    if value is None:
        return None
    if trigger.above is not None:
        if value > trigger.above:
            return True
        if value <= trigger.above - trigger.hysteresis:
            return False
    else:
        assert trigger.below is not None
        if value < trigger.below:
            return True
        if value >= trigger.below + trigger.hysteresis:
            return False
    return bool(previous) if previous is not None else False


def combine(states: list[bool | None], match: str) -> bool | None:
    """The policy's wish from its triggers' states (None: cannot tell)."""
    if match == "any":
        if any(s is True for s in states):
            return True
        return None if any(s is None for s in states) else False
    if any(s is False for s in states):
        return False
    return None if any(s is None for s in states) else True


@dataclass
class Decision:
    active: bool
    changed: bool
    #: why the state is what it is (for the decision log)
    reason: str


class PolicyMachine:
    """One policy's state over time: triggers with hysteresis, then the minimum hold and release times."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        #: each trigger's last decisive state (kept through unknown readings) and whether it is known now
        self.latched: list[bool] = [False] * len(policy.when)
        self.triggers: list[bool | None] = [None] * len(policy.when)
        self.active = False
        self.since: float | None = None

    def update(self, now: float, values: dict[str, float | None], ranks: dict[str, int | None] | None = None) -> \
            Decision:
        ranks = ranks or {}
        reasons = []
        for i, trigger in enumerate(self.policy.when):
            state = trigger_on(trigger, values.get(trigger.signal), self.latched[i], ranks.get(trigger.signal))
            if state is not None:
                self.latched[i] = state
            self.triggers[i] = state
            reasons.append(f"{describe(trigger)}: {'unknown' if state is None else 'on' if state else 'off'}")
        wish = combine(self.triggers, self.policy.match)
        reason = "; ".join(reasons)
        if wish is None:
            return Decision(self.active, False, f"no change: a signal is unknown ({reason})")
        if wish == self.active:
            return Decision(self.active, False, reason)
        held = 0.0 if self.since is None else now - self.since
        minimum = self.policy.min_hold_s if self.active else self.policy.min_release_s
        if self.since is not None and held < minimum:
            what = "active" if self.active else "released"
            return Decision(self.active, False, f"{reason}; stays {what}: {held:.0f} s of min "
                            f"{'hold' if self.active else 'release'} {minimum:.0f} s")
        self.active = wish
        self.since = now
        return Decision(self.active, True, reason)


def describe(trigger: Trigger) -> str:
    if trigger.top_hours is not None:
        return f"price in the day's top {trigger.top_hours} h"
    if trigger.above is not None:
        return f"{trigger.signal} > {trigger.above:g}" + (f" (off <= {trigger.above - trigger.hysteresis:g})"
                                                           if trigger.hysteresis else "")
    return f"{trigger.signal} < {trigger.below:g}" + (f" (off >= {trigger.below + trigger.hysteresis:g})"  # type: ignore[operator]
                                                       if trigger.hysteresis else "")


# --- vectorised, for the simulator -----------------------------------------------------------------------------

def _latch(on: Bools, off: Bools) -> npt.NDArray[np.int8]:
    """Per step: 1 where the latest decisive step was on, 0 where off, -1 before any (forward fill)."""
    n = len(on)
    idx = np.where(on | off, np.arange(n), -1)
    last = np.maximum.accumulate(idx)
    out = np.full(n, -1, dtype=np.int8)
    seen = last >= 0
    out[seen] = on[last[seen]].astype(np.int8)
    return out


def trigger_mask(trigger: Trigger, values: F64, ranks: npt.NDArray[np.int64] | None = None,
                 periods_per_hour: int = 4) -> npt.NDArray[np.int8]:
    """Per step: 1 on, 0 off, -1 unknown (NaN values; or before the first decisive value: off, as the machine)."""
    known = ~np.isnan(values)
    if trigger.top_hours is not None:
        assert ranks is not None
        state = np.where(ranks <= trigger.top_hours * periods_per_hour, 1, 0).astype(np.int8)
        return np.where(ranks > 0, state, -1).astype(np.int8)
    with np.errstate(invalid="ignore"):
        if trigger.above is not None:
            on = known & (values > trigger.above)
            off = known & (values <= trigger.above - trigger.hysteresis)
        else:
            assert trigger.below is not None
            on = known & (values < trigger.below)
            off = known & (values >= trigger.below + trigger.hysteresis)
    state = _latch(on, off)
    state[state < 0] = 0  # before anything decisive the machine's state is off
    return np.where(known, state, -1).astype(np.int8)


def active_mask(policy: Policy, t: F64, states: list[npt.NDArray[np.int8]]) -> Bools:
    """The policy's active state per step, with unknown = keep and the minimum hold/release times.

    Vectorised up to the wish (any/all over the trigger masks); the hold times are applied by walking only the
    steps where the wish changes and the steps where a hold expires, so the loop runs per change, not per step.
    """
    n = len(t)
    stack = np.vstack(states) if states else np.zeros((0, n), dtype=np.int8)
    if policy.match == "any":
        wish = np.where((stack == 1).any(axis=0), 1, np.where((stack == -1).any(axis=0), -1, 0))
    else:
        wish = np.where((stack == 0).any(axis=0), 0, np.where((stack == -1).any(axis=0), -1, 1))
    out = np.zeros(n, dtype=np.bool_)
    change = np.flatnonzero(np.r_[True, wish[1:] != wish[:-1]]) if n else np.zeros(0, dtype=np.intp)
    active, since = False, None
    pos = ci = 0
    while pos < n:
        while ci < len(change) and change[ci] <= pos:
            ci += 1
        nxt = int(change[ci]) if ci < len(change) else n
        w = int(wish[pos])
        if w != -1 and bool(w) != active:
            minimum = policy.min_hold_s if active else policy.min_release_s
            if since is None or t[pos] - since >= minimum:
                active, since = bool(w), float(t[pos])
            else:
                due = int(np.searchsorted(t, since + minimum, side="left"))
                if due < nxt:
                    out[pos:due] = active
                    pos = due
                    continue
        out[pos:nxt] = active
        pos = nxt
    return out


def day_ranks(t: F64, price: F64, step_s: float, day_index: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Per step, the rank of its price among the quarter-hours of its (Danish) day, 1 = most expensive; 0 if NaN.

    Computed on steps: with q steps per quarter-hour, the number of strictly dearer steps is q times the number
    of strictly dearer quarters, so ``1 + dearer_steps // q`` is the quarter's rank.
    """
    q = max(1, round(900.0 / step_s))
    ranks = np.zeros(len(t), dtype=np.int64)
    known = ~np.isnan(price)
    order = np.lexsort((-np.where(known, price, -np.inf), day_index))
    sorted_days = day_index[order]
    sorted_price = np.where(known, price, -np.inf)[order]
    # first position of each (day, price) run among the day's descending prices = number of dearer steps
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_days) != 0) + 1]
    day_start = np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    new_value = np.r_[True, (np.diff(sorted_price) != 0) | (np.diff(sorted_days) != 0)]
    first_of_run = np.maximum.accumulate(np.where(new_value, np.arange(len(order)), 0))
    dearer = first_of_run - day_start
    ranks[order] = 1 + dearer // q
    ranks[~known] = 0
    return ranks
