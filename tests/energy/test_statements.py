"""A user's own jobs' figures from the login node: the controller's statements (MUNGE-authenticated: a user sees
their own jobs only) and `bitten-energy-jobs`. MUNGE here is the munge/unmunge TEST DOUBLE pair in tests/doubles
(the energy_controller Molecule scenario runs the real munged); sacct is a recorded answer that lists two users'
jobs, so the statement's own filter is what keeps the other user's out."""

from __future__ import annotations

import json
import os
import pwd
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import requests

from bitten.capabilities import load_site, render_file
from bitten.cooling.ledger import Ledger
from bitten.energy import myjobs
from bitten.energy import statements as st
from bitten.energy.attribution import NodeInfo

from conftest import INVENTORIES

DOUBLES = Path(__file__).resolve().parents[1] / "doubles"
ME = pwd.getpwuid(os.getuid()).pw_name
OTHER = pwd.getpwuid(1).pw_name  # daemon: another account every Debian system has
T0 = 1780000200.0  # 2026-05-28T20:30Z
NODES = {"gpu01": NodeInfo(gpus=8, threads=128, nominal_w=10000.0, plugin="gpu")}


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    sacct = tmp_path / "sacct"
    # what sacct answers, whoever asks: both users' jobs (the statement must keep the other user's out)
    sacct.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/sacct-args\ncat <<'EOF'\n"
                     f"201|{ME}|proj1_b200|gpu|gpu|gpu01|cpu=16,gres/gpu=4,node=1|2026-05-28T21:00:00|"
                     "2026-05-28T22:00:00|COMPLETED|3600000\n"
                     f"202|{OTHER}|proj2_b200|gpu|gpu|gpu01|cpu=16,gres/gpu=4,node=1|2026-05-28T21:00:00|"
                     "2026-05-28T22:00:00|COMPLETED|3600000\nEOF\n")
    sacct.chmod(0o755)
    ledger = Ledger(tmp_path / "nodes.sqlite")
    with ledger.batch():
        t = T0
        while t <= T0 + 2 * 3600:
            ledger.record("node_energy", "gpu01", "power", t, 2.0)  # 2 kW
            t += 60
    ledger.close()
    cache = tmp_path / "signals.json"
    cache.write_text(json.dumps({"CO2Emis": {"fetched": T0 + 7200, "points": [[T0 + i * 300, 200.0]
                                                                                for i in range(24)]}}))
    monkeypatch.setenv("UNMUNGE_DOUBLE_UID", "4711")  # the controller's account
    monkeypatch.setenv("UNMUNGE_DOUBLE_USED", str(tmp_path / "replay-cache"))
    service = st.Statements(NODES, [tmp_path / "nodes.sqlite", tmp_path / "no-agent-ledger.sqlite"], cache,
                            ["b200"], [str(sacct)], clock=lambda: T0 + 7200)
    srv = st.serve(service, "127.0.0.1", 0, decode=partial(st.unmunge, argv=[str(DOUBLES / "unmunge")]))
    st.in_thread(srv)
    yield f"http://127.0.0.1:{srv.server_address[1]}{st.PATH}", tmp_path
    srv.shutdown()


def cred(uid: int, restrict: str = "4711") -> str:
    return f"MUNGE:double:{uid}:{restrict}:{os.urandom(4).hex()}"


def get(url: str, auth: str | None, **params: str) -> requests.Response:
    session = requests.Session()
    session.trust_env = False
    return session.get(url, params=params, headers={"Authorization": auth} if auth else {}, timeout=10)


def test_a_user_sees_their_own_jobs_with_figures(server: tuple[str, Path]) -> None:
    url, tmp = server
    answer = get(url, f"MUNGE {cred(os.getuid())}", since="2026-05-28")
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert doc["user"] == ME and [j["job_id"] for j in doc["jobs"]] == ["201"]
    job = doc["jobs"][0]
    # gpu01 draws 2 kW; the job has 4 of its 8 GPUs for one hour: 1 kWh, measured from the node's series
    assert job["it_energy"]["value"] == pytest.approx(1.0) and job["it_energy"]["status"] == "measured"
    assert job["co2_intensity"]["value"] == pytest.approx(200.0) and job["project"] == "proj1"
    # no cooling agent ledger readable here: PUE and what depends on it are missing, and say why
    assert job["pue"]["status"] == "missing" and job["co2"]["status"] == "missing" and job["co2"]["how"]
    assert doc["ledgers_unread"] and "no-agent-ledger.sqlite" in doc["ledgers_unread"][0]
    # sacct was asked for this user only, never --allusers
    args = (tmp / "sacct-args").read_text().split()
    assert f"--user={ME}" in args and "--allusers" not in args and "--starttime=2026-05-28T00:00:00" in args
    assert list(doc["by_user"]) == [ME]


def test_another_user_sees_only_theirs(server: tuple[str, Path]) -> None:
    url, _ = server
    doc = get(url, f"MUNGE {cred(1)}").json()
    assert doc["user"] == OTHER and [j["job_id"] for j in doc["jobs"]] == ["202"]


@pytest.mark.parametrize("auth, status, reason", [
    (None, 401, "no MUNGE credential"),
    ("Bearer x", 401, "no MUNGE credential"),
    ("MUNGE not-a-credential", 401, "no MUNGE credential"),
    ("MUNGE MUNGE:forged:0:4711:1", 401, "munged refused the credential: Invalid credential format"),
    # made for another account (slurmctld's, say): the controller's munged refuses it
    (f"MUNGE {cred(0, restrict='64030')}", 401, "Unauthorized credential"),
    (f"MUNGE {cred(4242424)}", 403, "uid 4242424 is not a user on this host"),
])
def test_no_statement_without_a_credential_munged_accepts(server: tuple[str, Path], auth: str | None, status: int,
                                                           reason: str) -> None:
    url, tmp = server
    answer = get(url, auth)
    assert answer.status_code == status and reason in answer.json()["error"]
    assert answer.headers.get("WWW-Authenticate") == ("MUNGE" if status == 401 else None)
    assert not (tmp / "sacct-args").exists()  # nothing ran for it


def test_a_credential_works_once(server: tuple[str, Path]) -> None:
    url, _ = server
    one = cred(os.getuid())
    assert get(url, f"MUNGE {one}").status_code == 200
    again = get(url, f"MUNGE {one}")
    assert again.status_code == 401 and "Replayed credential" in again.json()["error"]


def test_bad_dates_and_paths(server: tuple[str, Path]) -> None:
    url, _ = server
    assert get(url, f"MUNGE {cred(os.getuid())}", since="yesterday").status_code == 400
    assert get(url.replace("/v1/jobs", "/v1/all"), f"MUNGE {cred(os.getuid())}").status_code == 404


def client(url: str, tmp: Path, *args: str, uid: int | None = None) -> subprocess.CompletedProcess[str]:
    config = tmp / "jobs.json"
    config.write_text(json.dumps({"url": url, "controller_uid": 4711, "munge": str(DOUBLES / "munge")}))
    env = {**os.environ, "MUNGE_DOUBLE_UID": str(os.getuid() if uid is None else uid)}
    return subprocess.run([sys.executable, myjobs.__file__, "--config", str(config), *args], capture_output=True,
                          text=True, env=env, timeout=60, check=False)


def test_the_login_command_prints_the_users_statement(server: tuple[str, Path]) -> None:
    url, tmp = server
    done = client(url, tmp, "--since", "2026-05-28")
    assert done.returncode == 0, done.stderr
    assert f"energy of {ME}'s jobs since 2026-05-28T00:00:00" in done.stdout
    rows = [line.split()[0] for line in done.stdout.splitlines()[2:] if line[:1].isdigit()]
    assert rows == ["201"] and "1 kWh (measured)" in done.stdout
    assert "- (missing)" in done.stdout
    raw = client(url, tmp, "--json")
    assert raw.returncode == 0 and json.loads(raw.stdout)["jobs"][0]["job_id"] == "201"


def test_the_login_command_says_why_it_has_no_statement(server: tuple[str, Path]) -> None:
    url, tmp = server
    refused = client(url, tmp, uid=4242424)
    assert refused.returncode == 1
    assert "the energy controller refused (403): uid 4242424 is not a user on this host" in refused.stderr
    down = client("http://127.0.0.1:9/v1/jobs", tmp)
    assert down.returncode == 1 and "no statement from http://127.0.0.1:9/v1/jobs" in down.stderr
    assert client(url, tmp, "--since", "May").returncode == 2
    bad = subprocess.run([sys.executable, myjobs.__file__, "--config", str(tmp / "none.json")], capture_output=True,
                         text=True, timeout=30, check=False)
    assert bad.returncode == 2 and "the energy_controller role writes it" in bad.stderr


def test_the_client_is_standard_library_only() -> None:
    """It runs with the login node's python3, without bitten's virtualenv."""
    done = subprocess.run([sys.executable, "-S", "-I", myjobs.__file__, "--help"], capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 0 and "bitten-energy-jobs" in done.stdout


def test_a_ledger_is_read_without_writing_it(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l.sqlite")
    for i in range(61):
        led.record("it_energy", "m", "power", T0 + 60 * i, 1.0)  # 1 kW for an hour
    reader = Ledger.reader(tmp_path / "l.sqlite")
    assert reader.total("it_energy", T0, T0 + 3600).value == pytest.approx(1.0)
    with pytest.raises(sqlite3.OperationalError):
        reader.record("it_energy", "m", "power", T0 + 7200, 1.0)
    reader.close()
    led.close()
    with pytest.raises(sqlite3.OperationalError):
        Ledger.reader(tmp_path / "missing.sqlite")
    assert not (tmp_path / "missing.sqlite").exists()


def test_the_controllers_configuration_serves_statements() -> None:
    site = load_site(INVENTORIES / "bitten")
    import yaml

    raw = yaml.safe_load(render_file(site, "/etc/bitten/energy/controller.yaml", "ctl01"))
    sc = raw["statements"]
    gpu_node = next(n for n in site.compute_nodes if (p := site.profile_of(n)) is not None and p.gpu is not None)
    assert sc["port"] == 9107 and sc["nodes"][gpu_node]["gpus"] == 8 and sc["nodes"][gpu_node]["plugin"] == "gpu"
    # the cooling agent runs on the controller's host here: its ledger is read too
    assert sc["ledgers"] == ["/var/lib/bitten-cooling/ledger.sqlite"]
