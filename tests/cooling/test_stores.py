"""Safety never depends on accounting: with a corrupt, a locked or a full ledger or state database, a leak on the
project's CDU simulator still drains the loop's nodes; the store's failure is an alarm, a metric and a log line;
the agent never raises out of its loop; and when the store works again, accounting resumes by itself."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bitten.cooling.agent import Agent
from bitten.lab.doubles.slurm import MemorySlurm
from bitten.lab.httpserve import base_url

from .helpers import agent_config
from .test_agent import scrape, value


def _agent(tmp_path: Path, server: Any, meter_port: int | None = None) -> tuple[Agent, MemorySlurm]:
    slurm = MemorySlurm(["gpu01", "gpu02"])
    cfg = agent_config(tmp_path, base_url(server), meter_port, store_retry_s=0.2)
    return Agent(cfg, slurm=slurm), slurm


def _corrupt(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not a database, it was overwritten by something" * 100)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Another process holds the database's write lock (an EXCLUSIVE transaction)."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """The agent's state directory on a file system of its own (a 4 MiB tmpfs), so a test can fill it up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root (make test runs as root)")
    state = tmp_path / "state"
    state.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(state)], check=True)
    try:
        yield state
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)


def _fill(directory: Path) -> Path:
    """The disk is full: write a file until the file system refuses (ENOSPC); delete it to free the space."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def _leak_drains(agent: Agent, slurm: MemorySlurm, sim: Any) -> None:
    sim.set_fault(1, leak=True)
    agent.poll_once()
    assert "leak" in agent.tracker.kinds("loop-a")
    assert slurm.calls and slurm.calls[0][0] == "drain" and all(s.drained for s in slurm.nodes.values())


@pytest.mark.parametrize("store", ["ledger", "state"])
def test_a_corrupt_store_at_start_does_not_stop_the_agent(tmp_path: Path, cdu_sim: Any, store: str) -> None:
    sim, server = cdu_sim
    path = tmp_path / "state" / f"{store}.sqlite"
    _corrupt(path)
    agent, slurm = _agent(tmp_path, server)  # today: "file is not a database", and systemd restarts it forever
    try:
        supervised = agent.ledger if store == "ledger" else agent.state.db
        assert not supervised.available and "not a database" in supervised.last_error
        _leak_drains(agent, slurm, sim)
        m = scrape(agent)
        name = "ledger" if store == "ledger" else "state database"
        assert value(m, "bitten_cooling_store_available", store=name) == 0
        assert value(m, "bitten_cooling_store_errors_total", store=name) >= 1
        assert agent.status().to_json()["stores"][name]["available"] is False
        # an operator moves the corrupt file away: the agent opens a fresh one by itself
        path.rename(path.with_suffix(".corrupt"))
        time.sleep(0.25)
        agent.poll_once()
        assert supervised.available
        if store == "state":  # what was kept in memory meanwhile is written down now
            rows = sqlite3.connect(path).execute("SELECT loop, kind FROM alarms").fetchall()
            assert rows == [("loop-a", "leak")]
            logged = sqlite3.connect(path).execute("SELECT action, result FROM actions").fetchall()
            assert ("drain", "done") in logged
    finally:
        agent.close()


def test_a_locked_ledger_during_a_leak(tmp_path: Path, cdu_sim: Any, modbus_sim: Any) -> None:
    sim, server = cdu_sim
    for unit in (2, 3):
        modbus_sim.set(unit, "energy", 100.0)
    modbus_sim.set(1, "heat_energy", 50.0)
    agent, slurm = _agent(tmp_path, server, modbus_sim.port)
    try:
        agent.poll_once()
        with _locked(agent.config.ledger_path):
            start = time.monotonic()
            _leak_drains(agent, slurm, sim)
            assert time.monotonic() - start < 10
            assert not agent.ledger.available and "locked" in agent.ledger.last_error
        modbus_sim.set(2, "energy", 101.0)
        time.sleep(0.25)
        agent.poll_once()
        agent.poll_once()
        assert agent.ledger.available
        assert agent.totals.get("it_energy", 0) > 0  # accounting resumed: the counter's step was recorded
    finally:
        agent.close()


def test_a_full_disk_during_a_leak(tmp_path: Path, cdu_sim: Any, modbus_sim: Any, small_disk: Path) -> None:
    sim, server = cdu_sim
    for unit in (2, 3):
        modbus_sim.set(unit, "energy", 100.0)
    agent, slurm = _agent(tmp_path, server, modbus_sim.port)
    try:
        agent.poll_once()
        assert agent.ledger.available and agent.state.db.available
        filler = _fill(small_disk)
        modbus_sim.set(2, "energy", 101.0)
        _leak_drains(agent, slurm, sim)  # today the action log's write raised out of poll_once and the agent exited
        for _ in range(3):
            agent.poll_once()  # never raises
        for supervised in (agent.ledger, agent.state.db):
            assert not supervised.available and "full" in supervised.last_error
        assert any(a.action == "drain" and a.result == "done" for a in agent.state.actions())
        assert agent.state.pending  # the action log waits for the database
        m = scrape(agent)
        assert value(m, "bitten_cooling_store_available", store="ledger") == 0
        assert value(m, "bitten_cooling_store_available", store="state database") == 0
        filler.unlink()  # space again: both stores work, and catch up
        time.sleep(0.25)
        modbus_sim.set(2, "energy", 102.0)
        agent.poll_once()
        agent.poll_once()
        assert agent.ledger.available and agent.state.db.available
        assert not agent.state.pending
        logged = sqlite3.connect(agent.config.state_path).execute("SELECT action, result FROM actions").fetchall()
        assert ("drain", "done") in logged
        assert sqlite3.connect(agent.config.state_path).execute("SELECT kind FROM alarms").fetchall() == [("leak",)]
    finally:
        agent.close()
