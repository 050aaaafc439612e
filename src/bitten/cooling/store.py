"""Storage the agent can lose without losing its safety: a supervisor for its SQLite databases.

Alarms and drains never wait for, or depend on, the ledger or the state database. Every use of a store goes
through :meth:`Supervised.call`: when the database is corrupt, locked by another process, or on a full disk, the
call returns its fallback instead of raising, the store is marked unavailable (``available``, ``errors_total``,
``last_error``: exported as metrics, and an alarm of the agent), the first failure is logged as an error, and the
database is opened again after ``retry_s`` (with its own ``on_open`` hook, so the agent can write back what it kept
in memory meanwhile). A database that is corrupt when the agent starts does not stop the agent: it runs without it
and keeps trying, so systemd does not restart it in a loop, and it never alarms or drains less.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger("bitten.cooling.store")

T = TypeVar("T")
R = TypeVar("R")
#: what a database can fail with: sqlite3's errors, and the file system's
STORE_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, OSError)


class Supervised(Generic[T]):
    """A store (anything with ``close()``) opened by ``factory``, reopened after failures."""

    def __init__(self, name: str, factory: Callable[[], T], *, retry_s: float = 30.0,
                 on_open: Callable[[T], None] | None = None) -> None:
        self.name = name
        self.factory = factory
        self.retry_s = retry_s
        self.on_open = on_open
        self.lock = threading.RLock()
        self.store: T | None = None
        self.available = False
        self.errors_total = 0
        self.last_error = ""
        self.since: float | None = None  # unavailable since (None while available)
        self._next_open = 0.0
        self._open()

    def _open(self) -> None:
        try:
            store = self.factory()
        except STORE_ERRORS as exc:
            self._failed("cannot open", exc)
            return
        was = self.since
        self.store, self.available, self.since = store, True, None
        if was is not None:
            log.warning("%s: available again after %.0f s", self.name, time.time() - was)
        if self.on_open is not None:
            try:
                self.on_open(store)
            except STORE_ERRORS as exc:
                self._failed("cannot restore what was kept in memory", exc)

    def _failed(self, doing: str, exc: BaseException) -> None:
        self.errors_total += 1
        self.last_error = f"{doing}: {exc.__class__.__name__}: {exc}"[:300]
        first = self.available or self.since is None
        if self.since is None:
            self.since = time.time()
        self.available = False
        store, self.store = self.store, None
        if store is not None:
            with contextlib.suppress(*STORE_ERRORS):
                store.close()  # type: ignore[attr-defined]
        self._next_open = time.monotonic() + self.retry_s
        if first:
            log.error("%s unavailable (%s): alarms and drains go on; accounting waits until it returns "
                      "(next try in %.0f s)", self.name, self.last_error, self.retry_s)
        else:
            log.debug("%s still unavailable: %s", self.name, self.last_error)

    def tick(self) -> None:
        """Try to open the store again when it is unavailable and its retry is due (the agent calls this every
        cycle, so a store comes back even when nothing is written to it)."""
        with self.lock:
            if self.store is None and time.monotonic() >= self._next_open:
                self._open()

    def call(self, doing: str, fn: Callable[[T], R], fallback: R) -> R:
        """``fn(store)``, or ``fallback`` when the store is unavailable or fails (never raises a store error)."""
        with self.lock:
            if self.store is None and time.monotonic() >= self._next_open:
                self._open()
            if self.store is None:
                return fallback
            try:
                return fn(self.store)
            except STORE_ERRORS as exc:
                self._failed(doing, exc)
                return fallback

    def close(self) -> None:
        with self.lock:
            store, self.store = self.store, None
            if store is not None:
                with contextlib.suppress(*STORE_ERRORS):
                    store.close()  # type: ignore[attr-defined]
