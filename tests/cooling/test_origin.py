"""Credentials go only to their own device: a CDU of the project's simulator whose links (absolute @odata.id,
ServerSentEventUri, a session's Location) point to another origin gets no request there -- a trap server on that
origin sees nothing; http with credentials is refused; sessions are deleted on stop and re-created when the CDU
forgets them; the event stream works with session auth."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import pytest

from bitten.cooling.agent import Agent
from bitten.cooling.config import AgentConfigError, clear_text_credentials, parse_config
from bitten.cooling.errors import DeviceError
from bitten.cooling.redfish import RedfishCdu
from bitten.lab.doubles.slurm import MemorySlurm
from bitten.lab.httpserve import Server, base_url, in_thread, serve
from bitten.site.model import Cdu

from .helpers import agent_config


class Trap(BaseHTTPRequestHandler):
    """Another origin: records every request (and its credentials), answers 404."""

    seen: ClassVar[list[tuple[str, str, str | None, str | None]]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _any(self) -> None:
        type(self).seen.append((self.command, self.path, self.headers.get("Authorization"),
                                self.headers.get("X-Auth-Token")))
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_DELETE = do_PATCH = _any


@pytest.fixture
def trap() -> Iterator[tuple[Server, list[Any]]]:
    Trap.seen = []
    server = serve(Trap, "127.0.0.1", 0)
    in_thread(server)
    yield server, Trap.seen
    server.shutdown()


def test_links_to_another_origin_are_never_followed(tmp_path: Path, cdu_sim: Any, trap: Any) -> None:
    sim, server = cdu_sim
    trap_server, seen = trap
    slurm = MemorySlurm(["gpu01", "gpu02"])
    agent = Agent(agent_config(tmp_path, base_url(server)), slurm=slurm)
    try:
        sim.set_fault(1, leak=True)
        agent.poll_once()
        assert "leak" in agent.tracker.kinds("loop-a")
        sim.expand = False  # every part of the CDU is fetched by its link ...
        sim.link_origin = base_url(trap_server)  # ... and every link now points to the trap
        sim.set_fault(1, leak=False)
        for _ in range(4):
            agent.poll_once()
        assert seen == [], "a request (with the CDU's credentials) went to another origin"
        st = agent.devices["cdu-a"]
        assert st.failures >= 1 and "on another origin" in st.last_error and "nothing was sent there" in st.last_error
        assert "leak" in agent.tracker.kinds("loop-a")  # nothing read, nothing cleared
    finally:
        agent.close()


def test_an_event_stream_on_another_origin_is_refused(tmp_path: Path, cdu_sim: Any, trap: Any) -> None:
    sim, server = cdu_sim
    trap_server, seen = trap
    sim.link_origin = base_url(trap_server)
    cfg = agent_config(tmp_path, base_url(server))
    cfg.cdus["cdu-a"] = cfg.cdus["cdu-a"].model_copy(update={"events": True})
    agent = Agent(cfg, slurm=MemorySlurm(["gpu01", "gpu02"]))
    try:
        agent.start_listeners()
        agent.listeners[0].join(10)
        assert not agent.listeners[0].is_alive() and "on another origin" in str(agent.listeners[0].refused)
        assert seen == []
    finally:
        agent.close()


def test_a_session_on_another_origin_is_refused(cdu_sim: Any, trap: Any) -> None:
    sim, server = cdu_sim
    trap_server, seen = trap
    sim.link_origin = base_url(trap_server)  # Links.Sessions and the login's Location point to the trap
    cdu = RedfishCdu("sim", base_url(server), "1", username="agent", password="s3cret", auth="session")
    with pytest.raises(DeviceError, match=re.escape(f"{base_url(trap_server)}/redfish/v1/SessionService/Sessions is on "
                                                    "another origin")):
        cdu.read()
    cdu.close()
    assert seen == []  # neither a GET with the token nor the DELETE of the session went there


def test_sessions_are_deleted_on_stop_and_events_use_them(tmp_path: Path, cdu_sim: Any) -> None:
    sim, server = cdu_sim
    cfg = agent_config(tmp_path, base_url(server), poll_interval_s=30.0)
    cfg.cdus["cdu-a"] = cfg.cdus["cdu-a"].model_copy(update={"auth": "session", "events": True})
    slurm = MemorySlurm(["gpu01", "gpu02"])
    agent = Agent(cfg, slurm=slurm)
    runner = threading.Thread(target=agent.run, daemon=True)
    runner.start()
    try:
        deadline = time.time() + 10
        while not (agent.listeners and agent.listeners[0].connected.is_set()) and time.time() < deadline:
            time.sleep(0.02)
        assert agent.listeners[0].connected.is_set(), "the event stream never connected with auth: session"
        assert len(sim.sessions) == 1  # the poll and the stream share one session
        sim.set_fault(1, leak=True)
        start = time.time()
        while not slurm.calls and time.time() - start < 10:
            time.sleep(0.01)
        assert slurm.calls and slurm.calls[0][0] == "drain"  # the event woke the agent long before its 30 s poll
    finally:
        agent.stop.set()
        agent.wake.set()
        runner.join(10)
        agent.close()
    assert sim.sessions == {} and sim.sessions_deleted == 1  # a restart does not leak a session on the CDU


def test_http_with_credentials_is_refused(tmp_path: Path) -> None:
    assert clear_text_credentials(Cdu(url="http://10.2.0.1", username="bitten-ro"))
    assert not clear_text_credentials(Cdu(url="http://10.2.0.1", auth="none"))  # no account: nothing to leak
    assert not clear_text_credentials(Cdu(url="http://10.2.0.1"))  # no username: nothing is sent
    assert not clear_text_credentials(Cdu(url="http://127.0.0.1:8444", username="bitten-ro"))  # a simulator
    assert not clear_text_credentials(Cdu(url="https://10.2.0.1", username="bitten-ro"))
    raw = agent_config(tmp_path, "https://10.2.0.1").model_dump(mode="json", by_alias=True)
    raw["cdus"]["cdu-a"]["url"] = "http://10.2.0.1"
    with pytest.raises(AgentConfigError, match=r"cdus\.cdu-a\.url: http would send the CDU.s credentials in clear"):
        parse_config(raw)
