"""The energy ledger: intervals, gaps recorded as gaps, counter resets, period splits, and durability across a
process killed mid-write."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bitten.cooling.ledger import Ledger


def test_counter_power_and_level_channels(tmp_path: Path) -> None:
    book = Ledger(tmp_path / "l.sqlite", max_gap_s=60)
    for t, v in [(0, 100.0), (10, 101.0), (20, 103.0)]:
        book.record("reused_heat", "m/energy", "counter", t, v)
    for t, v in [(0, 36.0), (10, 36.0), (20, 72.0)]:
        book.record("it_energy", "it/power", "power", t, v)
    for t, v in [(0, 40.0), (10, 50.0)]:
        book.record("waste_heat_temperature", "m/supply", "level", t, v)
    assert book.total("reused_heat", 0, 20).value == pytest.approx(3.0)
    assert book.total("it_energy", 0, 20).value == pytest.approx(0.1 + 0.15)  # trapezoid: 36 kW*10 s + 54 kW*10 s
    assert book.total("waste_heat_temperature", 0, 10).value == pytest.approx(45.0)
    half = book.total("reused_heat", 0, 15)
    assert half.value == pytest.approx(1.0 + 1.0)  # half of the 10-20 s interval (2 kWh) falls in the period
    assert book.total("reused_heat", 100, 200).value is None  # nothing measured: None, not 0


def test_gaps_are_recorded_never_filled(tmp_path: Path) -> None:
    book = Ledger(tmp_path / "l.sqlite", max_gap_s=60)
    book.record("it_energy", "p", "power", 0, 10.0)
    book.record("it_energy", "p", "power", 30, 10.0)
    book.record("it_energy", "p", "power", 3630, 10.0)  # an hour without readings
    total = book.total("it_energy", 0, 3630)
    assert total.value == pytest.approx(10 * 30 / 3600)  # the hour is not invented
    assert [(g.start, g.end, g.bridged) for g in total.gaps] == [(30, 3630, None)]
    assert total.coverage == pytest.approx(30 / 3630)
    # a counter keeps counting through a gap: kept as "bridged" (measured, not attributable in time)
    book.record("reused_heat", "c", "counter", 0, 500.0)
    book.record("reused_heat", "c", "counter", 1000, 520.0)
    inside = book.total("reused_heat", 0, 2000)
    assert inside.value == pytest.approx(20.0) and inside.bridged == pytest.approx(20.0)
    straddling = book.total("reused_heat", 500, 2000)
    assert straddling.value is None and straddling.gaps[0].bridged == pytest.approx(20.0)


def test_counter_reset_is_a_gap(tmp_path: Path) -> None:
    book = Ledger(tmp_path / "l.sqlite", max_gap_s=60)
    book.record("it_energy", "c", "counter", 0, 9000.0)
    book.record("it_energy", "c", "counter", 10, 9005.0)
    book.record("it_energy", "c", "counter", 20, 3.0)  # replaced meter
    book.record("it_energy", "c", "counter", 30, 4.0)
    total = book.total("it_energy", 0, 30)
    assert total.value == pytest.approx(6.0)
    assert "backwards" in total.gaps[0].reason and total.gaps[0].bridged is None


def test_old_or_duplicate_samples_are_ignored(tmp_path: Path) -> None:
    book = Ledger(tmp_path / "l.sqlite", max_gap_s=60)
    assert book.record("it_energy", "c", "counter", 10, 1.0) is None
    assert book.record("it_energy", "c", "counter", 20, 2.0) == pytest.approx(1.0)
    assert book.record("it_energy", "c", "counter", 15, 5.0) is None
    assert book.record("it_energy", "c", "counter", 20, 5.0) is None
    assert book.total("it_energy", 0, 100).value == pytest.approx(1.0)


def test_series_for_plots(tmp_path: Path) -> None:
    book = Ledger(tmp_path / "l.sqlite", max_gap_s=60)
    for t in range(0, 61, 10):
        book.record("it_energy", "p", "power", t, 36.0)
    series = book.series("it_energy", 0, 120, 4)
    assert [round(v, 3) if v is not None else None for _, v in series] == [36.0, 36.0, None, None]


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from bitten.cooling.ledger import Ledger
    book = Ledger(Path(sys.argv[1]), max_gap_s=60)
    i = 0
    while True:
        book.record("it_energy", "meter/energy", "counter", 1000.0 + i, float(i))
        print(i, flush=True)  # acknowledged: record() returned, so the sample is on disk
        i += 1
""")


def test_durable_across_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    acked = -1
    deadline = time.time() + 30
    while acked < 40 and time.time() < deadline:
        acked = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)  # mid-write, no cleanup, no checkpoint
    proc.wait()
    assert acked >= 40
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    book = Ledger(path, max_gap_s=60)
    total = book.total("it_energy", 0, 1e9)
    assert total.value is not None and total.value >= acked  # every acknowledged sample survived
    last = book.db.execute("SELECT value FROM last").fetchone()[0]
    assert last >= acked
    # the agent starts again later: the silence becomes a gap, bridged by the counter's own difference
    added = book.record("it_energy", "meter/energy", "counter", 1000.0 + last + 600, last + 7.0)
    assert added is None
    after = book.total("it_energy", 0, 1e9)
    assert len(after.gaps) == 1 and after.gaps[0].bridged == pytest.approx(7.0)
    assert after.value == pytest.approx(total.value + 7.0)


def test_garbage_never_breaks_the_batch(tmp_path: Path) -> None:
    """A NaN sample is refused before it touches the database; a NULL left by an older agent restarts its source;
    one bad sample in a batch leaves the others recorded."""
    path = tmp_path / "l.sqlite"
    book = Ledger(path, max_gap_s=60)
    book.record("it_energy", "p", "power", 0, 10.0)
    for bad in (float("nan"), float("inf"), None, "12"):
        with pytest.raises(ValueError, match="not a finite number"):
            book.record("it_energy", "p", "power", 5, bad)  # type: ignore[arg-type]
    assert book.db.execute("SELECT value FROM last WHERE source = 'p'").fetchone() == (10.0,)
    # what a NaN became in an older database: NULL as the source's last value
    book.db.execute("INSERT OR REPLACE INTO last VALUES ('reused_heat', 'm', 'counter', 0, NULL)")
    with book.batch():
        assert book.record("reused_heat", "m", "counter", 10, 100.0) is None  # starts afresh, no TypeError
        with pytest.raises(ValueError):
            book.record("facility_energy", "x", "power", 10, float("nan"))
        assert book.record("it_energy", "p", "power", 10, 10.0) == pytest.approx(10 * 10 / 3600)
    assert book.record("reused_heat", "m", "counter", 20, 101.0) == pytest.approx(1.0)
    assert book.total("it_energy", 0, 10).value == pytest.approx(10 * 10 / 3600)  # the batch was committed


def test_a_counter_step_beyond_the_meters_power_is_a_gap(tmp_path: Path) -> None:
    book = Ledger(tmp_path / "l.sqlite", max_gap_s=60)
    rate = 500 / 3600  # a 500 kW meter: at most 1.39 kWh per 10 s
    book.record("reused_heat", "m", "counter", 0, 1000.0, max_rate=rate)
    assert book.record("reused_heat", "m", "counter", 10, 1001.0, max_rate=rate) == pytest.approx(1.0)
    assert book.record("reused_heat", "m", "counter", 20, 42949672.95, max_rate=rate) is None  # 0xFFFFFFFF * 0.01
    assert book.record("reused_heat", "m", "counter", 30, 1002.0, max_rate=rate) is None  # back: "backwards"
    assert book.record("reused_heat", "m", "counter", 40, 1003.0, max_rate=rate) == pytest.approx(1.0)
    total = book.total("reused_heat", 0, 40)
    assert total.value == pytest.approx(2.0)
    assert [g.reason.split(" (")[0].split(" stepped")[0] for g in total.gaps] == ["counter", "counter went backwards"]
    assert "a glitch, not energy" in total.gaps[0].reason and total.gaps[0].bridged is None
