"""Leak response levels, at the agent level: drain (always); optionally the loop's jobs requeued or cancelled;
optionally, on a Critical leak, the nodes powered off through their BMCs (the project's sushy-tools BMC emulator,
TLS and basic auth, the accounts from an owner-only file). Off by default, logged, idempotent, read back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bitten.cooling.agent import Agent
from bitten.cooling.config import parse_config
from bitten.core.pki import CertificateAuthority
from bitten.core.redfish.connection import Connection
from bitten.core.redfish.credentials import Credentials
from bitten.core.redfish.endpoint import Endpoint, Tls
from bitten.lab.doubles.bmc_emulator import EmulatorServer, SystemSpec, write_htpasswd
from bitten.lab.doubles.slurm import MemorySlurm
from bitten.lab.httpserve import base_url

from .helpers import agent_config

USER, PASSWORD = "bitten-cooling", "emulator-only-password-3c9a"


def _with_actions(cfg: Any, **leak: Any) -> Any:
    loop = cfg.loops["loop-a"]
    cfg.loops["loop-a"] = loop.model_copy(update={"actions": {
        **loop.actions, "leak": loop.actions["leak"].model_copy(update=leak)}})
    return cfg


def test_by_default_a_leak_drains_and_nothing_more(tmp_path: Path, cdu_sim: Any) -> None:
    sim, server = cdu_sim
    slurm = MemorySlurm(["gpu01", "gpu02"])
    slurm.jobs = {"101": ("gpu01",), "102": ("gpu02", "gpu09")}
    agent = Agent(agent_config(tmp_path, base_url(server)), slurm=slurm)
    try:
        sim.set_fault(1, leak=True)
        agent.poll_once()
        agent.poll_once()
        assert [c[0] for c in slurm.calls] == ["drain"]  # the jobs finish on drained nodes
        assert set(slurm.jobs) == {"101", "102"}
        assert agent.engine.power is None
    finally:
        agent.close()


@pytest.mark.parametrize("how", ["requeue", "cancel"])
def test_a_leak_can_requeue_or_cancel_the_loops_jobs(tmp_path: Path, cdu_sim: Any, how: str) -> None:
    sim, server = cdu_sim
    slurm = MemorySlurm(["gpu01", "gpu02", "gpu09"])
    slurm.jobs = {"101": ("gpu01",), "102": ("gpu02", "gpu09"), "200": ("gpu09",)}
    agent = Agent(_with_actions(agent_config(tmp_path, base_url(server)), jobs=how), slurm=slurm)
    try:
        sim.set_fault(1, leak=True)
        agent.poll_once()
        assert [c[0] for c in slurm.calls] == ["drain", how]
        assert slurm.calls[1][1] == ("101", "102")  # the jobs on the loop's nodes, not job 200 elsewhere
        assert set(slurm.jobs) == {"200"}
        done = [a for a in agent.state.actions() if a.action == f"jobs_{how}"]
        assert done and done[0].result == "done" and "101" in done[0].detail
        slurm.jobs["103"] = ("gpu01",)  # (a job that slipped in) -- once per alarm, not every poll
        agent.poll_once()
        assert [c[0] for c in slurm.calls] == ["drain", how]
    finally:
        agent.close()


def test_jobs_left_running_are_reported_failed(tmp_path: Path, cdu_sim: Any) -> None:
    sim, server = cdu_sim

    class Stubborn(MemorySlurm):
        def cancel(self, jobs: Any, nodes: Any) -> list[str]:
            self.calls.append(("cancel", tuple(jobs), ""))
            return list(jobs)  # read back: still running

    slurm = Stubborn(["gpu01", "gpu02"])
    slurm.jobs = {"101": ("gpu01",)}
    agent = Agent(_with_actions(agent_config(tmp_path, base_url(server)), jobs="cancel"), slurm=slurm)
    try:
        sim.set_fault(1, leak=True)
        agent.poll_once()
        failed = [a for a in agent.state.actions() if a.action == "jobs_cancel"]
        assert failed and failed[0].result == "failed" and "still running" in failed[0].detail
        agent.poll_once()
        assert [c[0] for c in slurm.calls].count("cancel") == 2  # not done: tried again on the next poll
    finally:
        agent.close()


@pytest.fixture
def bmcs(tmp_path: Path) -> Iterator[tuple[EmulatorServer, Path, Path]]:
    """The sushy-tools emulator (TLS from a test CA, basic auth) with gpu01 and gpu02 powered on."""
    ca = CertificateAuthority(tmp_path / "pki").ensure()
    pair = ca.issue("bmc", ["127.0.0.1"])
    htpasswd = tmp_path / "htpasswd"
    write_htpasswd(htpasswd, USER, PASSWORD, rounds=4)
    creds = tmp_path / "bmc-credentials.yaml"
    creds.write_text(yaml.safe_dump({"username": USER, "password": PASSWORD}))
    creds.chmod(0o600)
    systems = [SystemSpec("gpu01", power_state="On"), SystemSpec("gpu02", power_state="On")]
    server = EmulatorServer(systems, tmp_path / "emulator", cert=(pair.cert, pair.key), auth_file=htpasswd).start()
    yield server, ca.cert_path, creds
    server.stop()


def _power(server: EmulatorServer, ca: Path, node: str) -> str:
    with Connection(Endpoint(node, server.url, node, "generic"), Credentials(USER, PASSWORD),
                    Tls(ca_file=str(ca))) as conn:
        return str(conn.get_json(f"/redfish/v1/Systems/{node}")["PowerState"])


def _power_off_config(tmp_path: Path, url: str, server: EmulatorServer, ca: Path, creds: Path) -> Any:
    raw = agent_config(tmp_path, url).model_dump(mode="json", by_alias=True)
    for node in raw["loops"]["loop-a"]["nodes"]:
        node["bmc"] = {"url": server.url, "system_id": node["name"], "flavour": "generic"}
    raw["loops"]["loop-a"]["actions"]["leak"]["power_off"] = True
    raw.update(bmc_credentials_file=str(creds), bmc_ca_file=str(ca))
    return parse_config(raw)


def test_a_critical_leak_powers_the_nodes_off_through_their_bmcs(
        tmp_path: Path, cdu_sim: Any, bmcs: tuple[EmulatorServer, Path, Path]) -> None:
    sim, server = cdu_sim
    emulator, ca, creds = bmcs
    slurm = MemorySlurm(["gpu01", "gpu02"])
    agent = Agent(_power_off_config(tmp_path, base_url(server), emulator, ca, creds), slurm=slurm)
    try:
        assert _power(emulator, ca, "gpu01") == "On"
        sim.set_fault(1, leak="Warning")  # a warning: drained, not powered off
        agent.poll_once()
        assert slurm.calls[0][0] == "drain" and _power(emulator, ca, "gpu01") == "On"
        sim.set_fault(1, leak=True)  # critical now
        agent.poll_once()
        assert _power(emulator, ca, "gpu01") == "Off" and _power(emulator, ca, "gpu02") == "Off"
        done = [a for a in agent.state.actions() if a.action == "power_off"]
        assert [(a.result, a.nodes) for a in done] == [("done", ("gpu01", "gpu02"))]
        assert "BMC reads Off" in done[0].detail
        agent.poll_once()  # idempotent: not powered off again, nothing logged again
        assert len([a for a in agent.state.actions() if a.action == "power_off"]) == 1
    finally:
        agent.close()


def test_an_unsafe_credentials_file_is_refused_and_the_leak_still_drains(
        tmp_path: Path, cdu_sim: Any, bmcs: tuple[EmulatorServer, Path, Path]) -> None:
    sim, server = cdu_sim
    emulator, ca, creds = bmcs
    creds.chmod(0o644)  # others may read the BMC passwords: not used
    slurm = MemorySlurm(["gpu01", "gpu02"])
    agent = Agent(_power_off_config(tmp_path, base_url(server), emulator, ca, creds), slurm=slurm)
    try:
        sim.set_fault(1, leak=True)
        agent.poll_once()
        assert slurm.calls[0][0] == "drain"  # safety first: the nodes are drained anyway
        failed = [a for a in agent.state.actions() if a.action == "power_off"]
        assert failed and failed[0].result == "failed" and "accessible to others" in failed[0].detail
        assert _power(emulator, ca, "gpu01") == "On"
    finally:
        agent.close()
