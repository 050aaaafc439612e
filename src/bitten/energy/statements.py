"""Each user's own jobs' energy, CO2 and reused heat, for the login nodes (`bitten-energy-jobs` there).

The energy controller serves ``GET /v1/jobs[?since=YYYY-MM-DD]`` on its host. A request carries a MUNGE credential
(``Authorization: MUNGE <credential>``), made on the login node by ``munge`` for the user who runs the command and
restricted to the controller's account (``munge --restrict-uid``): the controller decodes it with ``unmunge`` (the
local munged checks the signature, the lifetime and replays) and answers with that user's jobs only -- sacct
``--user=<the credential's user>``, never ``--allusers``, and every record checked to be theirs. A request without a
credential, or with one munged refuses, is a 401; a uid this host does not know, a 403. Nothing in the request but
the credential and the date says whose jobs are shown.

The figures are bitten's attribution (bitten.energy.attribution) from the controller's own series (node energy,
its signal cache's CO2) and the ledgers named in the configuration (the cooling agent's, when it runs on this host);
each figure says measured, estimated or missing.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bitten.core.process import run
from bitten.energy import attribution as att

log = logging.getLogger("bitten.energy.statements")
SCHEME = "MUNGE"
PATH = "/v1/jobs"
#: a MUNGE credential is a few hundred bytes; anything much longer is not one
MAX_CREDENTIAL = 4096
#: jobs since this many days ago when the request names no date
DEFAULT_DAYS = 30
#: sacct's format for one user (the attribution's own fields; no --allusers)
SACCT_USER = tuple(a for a in att.SACCT if a != "--allusers")


class AuthError(Exception):
    """The credential is missing or munged refused it (401), or its uid is unknown here (403)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class Caller:
    uid: int
    user: str


#: unmunge's metadata values: ``Success (0)``, ``Replayed credential (17)``, ``alice (1000)``
_METADATA = re.compile(r"(?P<text>.*?)\s*\((?P<number>\d+)\)")


def unmunge(credential: str, argv: Sequence[str] = ("unmunge",), timeout: float = 10.0) -> int:
    """The uid a MUNGE credential was made for, as the local munged decodes it (signature, TTL, replay).

    unmunge refuses a credential it cannot decode with an error on stderr; one it decodes but must not accept
    (expired, rewound, replayed) it prints with its status, ``Replayed credential (17)``, and exits non-zero.
    """
    if not credential or len(credential) > MAX_CREDENTIAL or not re.fullmatch(r"MUNGE:[A-Za-z0-9+/=:]+", credential):
        raise AuthError(401, "no MUNGE credential")
    result = run([*argv, "--keys=STATUS,UID", "--output=/dev/null"], timeout, stdin=credential)
    fields = {key.strip(): value.strip() for key, _, value in
              (line.partition(":") for line in result.stdout.splitlines()) if value}
    status = _METADATA.fullmatch(fields.get("STATUS", ""))
    uid = _METADATA.fullmatch(fields.get("UID", ""))
    if result.timed_out or result.missing or result.returncode != 0 or status is None or status["number"] != "0":
        why = status["text"] if status is not None and status["number"] != "0" else \
            result.stderr.strip().removeprefix("unmunge: ").removeprefix("Error: ")
        raise AuthError(401, f"munged refused the credential: {why[:200] or 'no answer'}")
    if uid is None:
        raise AuthError(401, f"munged's answer has no uid: {result.stdout.strip()[:200]!r}")
    return int(uid["number"])


def caller(credential: str, decode: Callable[[str], int] = unmunge) -> Caller:
    uid = decode(credential)
    try:
        return Caller(uid, pwd.getpwuid(uid).pw_name)
    except KeyError:
        raise AuthError(403, f"uid {uid} is not a user on this host") from None


class Statements:
    """One user's jobs and their figures, from sacct and the configured series."""

    def __init__(self, nodes: dict[str, att.NodeInfo], ledgers: Sequence[Path], signal_cache: Path | None,
                 categories: Sequence[str] = (), sacct: Sequence[str] = ("sacct",), timeout: float = 60.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.nodes = nodes
        self.ledgers = list(ledgers)
        self.signal_cache = signal_cache
        self.categories = list(categories)
        self.sacct = list(sacct)
        self.timeout = timeout
        self.clock = clock

    def jobs(self, user: str, since: float) -> str:
        start = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        argv = [*self.sacct, *SACCT_USER[1:], f"--user={user}", f"--starttime={start}"]
        result = run(argv, self.timeout, env={**os.environ, "TZ": "UTC", "SLURM_TIME_FORMAT": "%Y-%m-%dT%H:%M:%S"})
        if result.timed_out or result.missing or result.returncode != 0:
            raise RuntimeError(f"sacct: {'no answer' if result.timed_out else result.returncode}: "
                               f"{result.stderr.strip()[:200]}")
        records = [j for j in att.parse_sacct(result.stdout) if j.user == user]  # theirs only, whatever sacct says
        realised, forecast = att.co2_points(self.signal_cache) if self.signal_cache and \
            self.signal_cache.exists() else ([], [])
        # imported here, not at the top: only this path needs it, and start-up stays light
        import sqlite3

        from bitten.cooling.ledger import Ledger

        opened, unread = [], []
        for path in self.ledgers:
            try:
                opened.append(Ledger.reader(path))
            except sqlite3.Error as exc:
                unread.append(f"{path}: {exc}")
        try:
            ledger = att.Ledgers(opened) if opened else None
            results = [att.attribute(att.JobRecord(**{**j.__dict__, "project": att.project_of(
                j.account, j.user, self.categories)}), ledger=ledger, nodes=self.nodes, realised=realised,
                forecast=forecast) for j in records]
        finally:
            for led in opened:
                led.close()
        doc = json.loads(att.to_json(results))
        doc["user"] = user
        doc["since"] = start
        if unread:
            log.warning("statement for %s without ledgers: %s", user, "; ".join(unread))
            doc["ledgers_unread"] = unread
        return json.dumps(doc, indent=2)


def _since(query: str, now: float) -> float:
    values = parse_qs(query).get("since")
    if not values:
        return now - DEFAULT_DAYS * 86400
    try:
        return datetime.strptime(values[-1], "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise ValueError(f"since={values[-1]!r} is not a date (YYYY-MM-DD)") from None


def make_handler(statements: Statements, decode: Callable[[str], int]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "bitten-energy-statements/1"

        def log_message(self, format: str, *args: Any) -> None:
            log.info("%s %s", self.address_string(), format % args)

        def _json(self, code: int, doc: dict[str, Any] | str) -> None:
            body = (doc if isinstance(doc, str) else json.dumps(doc)).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if code == 401:
                self.send_header("WWW-Authenticate", SCHEME)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != PATH:
                self._json(404, {"error": f"not found; GET {PATH}"})
                return
            scheme, _, credential = (self.headers.get("Authorization") or "").partition(" ")
            try:
                if scheme != SCHEME:
                    raise AuthError(401, f"no {SCHEME} credential (Authorization: {SCHEME} <munge -n>)")
                who = caller(credential.strip(), decode)
                since = _since(url.query, statements.clock())
            except AuthError as exc:
                log.warning("refused %s: %s", self.address_string(), exc)
                self._json(exc.status, {"error": str(exc)})
                return
            except ValueError as exc:
                self._json(400, {"error": str(exc)})
                return
            try:
                body = statements.jobs(who.user, since)
            except (RuntimeError, ValueError, OSError) as exc:
                log.warning("statement for %s failed: %s", who.user, exc)
                self._json(503, {"error": f"the statement could not be made: {exc}"[:300]})
                return
            log.info("statement for %s (uid %d)", who.user, who.uid)
            self._json(200, body)

    return Handler


class StatementServer(ThreadingHTTPServer):
    daemon_threads = True


def serve(statements: Statements, host: str, port: int,
          decode: Callable[[str], int] = unmunge) -> StatementServer:
    """A bound server; ``port`` 0 picks a free one. Run it with in_thread."""
    return StatementServer((host, port), make_handler(statements, decode))


def in_thread(server: StatementServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="statements")
    thread.start()
    return thread
