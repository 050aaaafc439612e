"""Reaching a CDU's Redfish service: bitten.core.redfish's Connection (the one client of every device type), with
one wall-clock deadline for a whole device read.

The client gives origin pinning (a link, session Location or redirect to another origin raises before anything is
sent), a size cap (``max_bytes``), persistent connections, sessions (deleted on close, re-created on 401), TLS
verification and its errors. This module adds what the cooling agent needs on top:

- **One deadline per read**: every request of a device read, and every byte of its answers, ends within
  ``deadline(seconds)`` (each request's timeouts are cut to what is left of it), so a device that drips its answer
  fails its read on time instead of holding the poll.
- **No retries inside a read**: the agent retries a failed device with backoff at its next attempt; a retry inside
  the deadline would only hide a slow device.
- Errors as DeviceError naming the CDU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Iterator
from typing import Any, Literal
from urllib.parse import urlsplit

from bitten.cooling.errors import DeviceError
from bitten.core.redfish.connection import Connection
from bitten.core.redfish.credentials import Credentials
from bitten.core.redfish.endpoint import Endpoint, Limits, Timeouts, Tls
from bitten.core.redfish.errors import RedfishError
from bitten.core.retry import Backoff

AuthMode = Literal["basic", "session", "none"]
#: one attempt per request: the agent's own backoff decides when a failed device is tried again
ONCE = Backoff(attempts=1)


class CduConnection:
    """One CDU's Redfish service: a bitten.core.redfish Connection with a deadline per read."""

    def __init__(self, name: str, url: str, *, auth: AuthMode = "basic", username: str | None = None,
                 password: str | None = None, ca_file: str | None = None, timeout: float = 5.0,
                 max_bytes: int = 4 * 1024 * 1024) -> None:
        self.name = name
        self.url = url.rstrip("/")
        credentials = Credentials(username, password or "") if username is not None and auth != "none" else None
        self.timeouts = Timeouts(connect=timeout, read=timeout, request=timeout)
        self.conn = Connection(Endpoint(host=name, url=self.url, system_id="", flavour="generic", kind="CDU"),
                               credentials, Tls(verify=True, ca_file=ca_file), self.timeouts, ONCE,
                               Limits(max_body=max_bytes), auth=auth if credentials is not None else "none")
        self._deadline = threading.local()
        self._lock = threading.Lock()

    # --- origin ---------------------------------------------------------------------------------------------
    def resolve(self, link: str) -> str:
        """The path of a link the device gave, on the device's own origin; DeviceError for any other origin."""
        try:
            absolute = self.conn.connector.url_for(link)
        except RedfishError as exc:
            raise DeviceError(f"{self.name}: refused to follow {link[:120]!r}: {exc.message}") from None
        parts = urlsplit(absolute)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    # --- time -----------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """Every request of this thread inside the block, and its whole answer, ends within ``seconds``."""
        previous = getattr(self._deadline, "at", None)
        self._deadline.at = time.monotonic() + seconds
        try:
            yield
        finally:
            self._deadline.at = previous

    def _budget(self, doing: str) -> None:
        """Cut the next request's timeouts to what is left of the read's deadline."""
        at = getattr(self._deadline, "at", None)
        if at is None:
            self.conn.connector.timeouts = self.timeouts
            return
        left = at - time.monotonic()
        if left <= 0:
            raise DeviceError(f"{self.name}: {doing}: the read deadline passed")
        self.conn.connector.timeouts = dataclasses.replace(
            self.timeouts, connect=min(self.timeouts.connect, left), read=min(self.timeouts.read, left),
            request=min(self.timeouts.request, left))

    @contextlib.contextmanager
    def _mapped(self, doing: str) -> Iterator[None]:
        """bitten.core.redfish's errors as DeviceError naming the CDU (and saying when the deadline ended it)."""
        try:
            yield
        except RedfishError as exc:
            at = getattr(self._deadline, "at", None)
            if at is not None and time.monotonic() >= at - 0.05:
                raise DeviceError(f"{self.name}: {doing}: the read deadline passed ({exc.message})") from None
            raise DeviceError(str(exc)) from None
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            # sushy could not make sense of the device's answer (an error body that is not Redfish's, say)
            raise DeviceError(f"{self.name}: {doing}: the device's answer could not be understood "
                              f"({exc.__class__.__name__}: {str(exc)[:200]})") from None

    # --- session ----------------------------------------------------------------------------------------------
    def ensure_open(self) -> Any:
        with self._lock, self._mapped("login"):
            self._budget("login")
            return self.conn.open()

    @property
    def service_root(self) -> dict[str, Any]:
        """The service root document as read when the connection opened."""
        self.ensure_open()
        return self.conn.root_json

    def auth_for_stream(self) -> tuple[dict[str, str], tuple[str, str] | None]:
        """Headers and basic-auth pair for a second HTTP client of this device (the event stream)."""
        self.ensure_open()
        session = self.conn.connector._session  # sushy's session, which holds the token
        headers = {"X-Auth-Token": session.headers["X-Auth-Token"]} if "X-Auth-Token" in session.headers else {}
        basic = session.auth if isinstance(session.auth, tuple) else None
        return headers, basic

    def relogin(self) -> None:
        """The device refused the session (it expired, or the device restarted): forget it and log in again."""
        with self._lock:
            self.conn.close()
        self.ensure_open()

    def close(self) -> None:
        """Delete the session on the device (auth: session), then close the connections."""
        with self._lock, contextlib.suppress(Exception):
            self.conn.connector.timeouts = self.timeouts
            self.conn.close()

    # --- requests --------------------------------------------------------------------------------------------
    def get_json(self, path: str) -> dict[str, Any]:
        """GET a document of the device (a path, or a link it gave: pinned to its origin) as a JSON object."""
        target = self.resolve(path)
        self.ensure_open()
        with self._mapped(f"GET {target.split('?', 1)[0]}"):
            self._budget(f"GET {target}")
            return self.conn.get_json(target)

    def patch(self, path: str, body: dict[str, Any], etag: str | None = None) -> int:
        target = self.resolve(path)
        self.ensure_open()
        with self._mapped(f"PATCH {target}"):
            self._budget(f"PATCH {target}")
            return int(self.conn.patch(target, body, etag=etag).status_code)
