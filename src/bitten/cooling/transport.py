"""Reaching a CDU's Redfish service: bitten.core.redfish's connection (sushy's connector, TLS, errors, sessions),
bounded in time and size and pinned to the device's origin.

- **Deadline**: one wall-clock limit for a whole device read (connect, every request, every byte of every body).
  Each request's socket timeouts are clamped to what is left, and bodies are read in pieces with the deadline
  checked between them, so a device that answers one byte every half second fails its read at the deadline instead
  of holding the poll for as long as it drips.
- **Size cap**: an answer larger than ``max_bytes`` (declared or as it arrives) fails the read before it is held
  in memory.
- **Origin pinning**: every request goes to the device's own scheme, host and port. A link the device gives to
  another origin (an absolute ``@odata.id``, a ``ServerSentEventUri``, a session ``Location``) is refused before a
  byte is sent, and redirects are not followed, so credentials and session tokens never leave the device.
- **Sessions**: ``auth: session`` logs in once (POST to the service root's Links.Sessions), keeps the token for
  every request and the event stream, logs in again when the device forgets it (401), and deletes the session on
  close (a restart does not leak a session on the CDU). ``basic`` sends the account with each request; ``none``
  sends nothing.
- **Persistent connections**: sushy asks every device to close the connection after each answer; a CDU polled
  every few seconds keeps one connection (and one TLS handshake).
- **No retries inside a read**: the agent retries a failed device with backoff at its next attempt; a retry inside
  the deadline would only hide a slow device.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import requests
import sushy
import urllib3
from requests.adapters import HTTPAdapter
from sushy import auth as sushy_auth
from sushy import exceptions as sushy_exc

from bitten.cooling.errors import DeviceError
from bitten.core.redfish.connection import Connection, Endpoint, RetryPolicy, Timeouts, Tls, translated
from bitten.core.redfish.credentials import Credentials
from bitten.core.redfish.errors import RedfishError

AuthMode = Literal["basic", "session", "none"]
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL, lower case, with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(scheme, 0)


def is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "").lower() in LOOPBACK or (urlsplit(url).hostname or "").startswith("127.")


class OriginRefused(requests.exceptions.InvalidURL):
    """A request to another origin than the device's: refused before anything is sent."""


class TooLarge(requests.exceptions.RequestException):
    """The answer is larger than the cap."""


class DeadlinePassed(requests.exceptions.Timeout):
    """The device read's wall-clock deadline passed."""


class _Budget(threading.local):
    deadline: float | None = None


def _clamp(timeout: Any, remaining: float) -> tuple[float, float]:
    if isinstance(timeout, tuple):
        connect, read = timeout
    else:
        connect = read = timeout
    connect = remaining if connect is None else min(float(connect), remaining)
    read = remaining if read is None else min(float(read), remaining)
    return max(connect, 0.001), max(read, 0.001)


def _socket(raw: Any) -> Any:
    connection = getattr(raw, "_connection", None)
    return getattr(connection, "sock", None)


class BoundedAdapter(HTTPAdapter):
    """requests' adapter for one device: requests only to ``pinned`` (an origin), bodies at most ``max_bytes``,
    everything within the deadline set by :meth:`CduConnection.deadline` (per thread)."""

    def __init__(self, pinned: tuple[str, str, int], max_bytes: int, budget: _Budget) -> None:
        super().__init__(pool_connections=1, pool_maxsize=2, max_retries=0)
        self.pinned = pinned
        self.max_bytes = max_bytes
        self.budget = budget

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: bool | str = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        if origin(str(request.url)) != self.pinned:
            scheme, host, port = origin(str(request.url))
            raise OriginRefused(f"{request.method} refused: {scheme}://{host}:{port} is not the device's origin",
                                request=request)
        deadline = self.budget.deadline
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlinePassed(f"read deadline passed before {request.method} {request.path_url}",
                                     request=request)
            timeout = _clamp(timeout, remaining)
        resp = super().send(request, stream=True, timeout=timeout, verify=verify, cert=cert, proxies=proxies)
        try:
            resp._content = self._body(resp, deadline)
            resp._content_consumed = True  # type: ignore[attr-defined]
        except BaseException:
            resp.close()
            raise
        resp.raw.release_conn()
        return resp

    def _body(self, resp: requests.Response, deadline: float | None) -> bytes:
        declared = resp.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise TooLarge(f"the answer declares {int(declared)} bytes, more than the cap of {self.max_bytes} bytes")
        raw = resp.raw
        chunks: list[bytes] = []
        size = 0
        while True:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DeadlinePassed(f"read deadline passed after {size} bytes of the answer")
                sock = _socket(raw)
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.settimeout(remaining)
            try:
                chunk = raw.read1(65536, decode_content=True)
            except urllib3.exceptions.ReadTimeoutError as exc:
                raise requests.exceptions.ReadTimeout(f"no more of the answer within the read timeout ({exc})"
                                                      ) from exc
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise requests.exceptions.ConnectionError(f"the answer broke off after {size} bytes ({exc})"
                                                          ) from exc
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self.max_bytes:
                raise TooLarge(f"the answer is larger than the cap of {self.max_bytes} bytes")
            chunks.append(chunk)


@dataclass(frozen=True)
class _PlainRoot:
    """The service root of a connection without a session (``basic`` or ``none``): its document only."""

    json: dict[str, Any]
    _auth: None = None


@dataclass(frozen=True)
class CduEndpoint(Endpoint):
    """A CDU's Redfish service (the Endpoint of bitten.core.redfish names BMCs)."""

    @property
    def where(self) -> str:
        return f"CDU {self.host} ({self.url})"


class CduConnection(Connection):
    """One CDU's Redfish service as a bitten.core.redfish Connection: deadline, size cap, origin pin, sessions."""

    def __init__(self, name: str, url: str, *, auth: AuthMode = "basic", username: str | None = None,
                 password: str | None = None, ca_file: str | None = None, timeout: float = 5.0,
                 max_bytes: int = 4 * 1024 * 1024) -> None:
        endpoint = CduEndpoint(host=name, url=url.rstrip("/"), system_id="", flavour="generic")
        super().__init__(endpoint, Credentials(username or "", password or ""), Tls(verify=True, ca_file=ca_file),
                         Timeouts(connect=timeout, read=timeout), RetryPolicy(attempts=1))
        self.name = name
        self.auth_mode: AuthMode = auth if username is not None else "none"
        self.pinned = origin(endpoint.url)
        self.budget = _Budget()
        session: requests.Session = self.connector._session  # sushy's own session
        session.headers.pop("Connection", None)  # sushy asks for "close"; a polled CDU keeps its connection
        session.headers["Accept"] = "application/json"
        session.max_redirects = 0  # a redirect is never followed (it could lead off the origin)
        session.trust_env = False  # no proxy from the environment between the agent and its devices
        adapter = BoundedAdapter(self.pinned, max_bytes, self.budget)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        self._lock = threading.Lock()

    # --- origin ---------------------------------------------------------------------------------------------
    def resolve(self, link: str) -> str:
        """The path of a link the device gave, on the device's own origin; DeviceError for any other origin."""
        absolute = urljoin(self.endpoint.url + "/", link)
        if origin(absolute) != self.pinned:
            raise DeviceError(f"{self.name}: refused to follow {link[:120]!r}: not on the CDU's origin "
                              f"{self.endpoint.url} (credentials go only to their own device)")
        parts = urlsplit(absolute)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    # --- time -----------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """Every request of this thread inside the block, and its whole body, ends within ``seconds``."""
        previous = self.budget.deadline
        self.budget.deadline = time.monotonic() + seconds
        try:
            yield
        finally:
            self.budget.deadline = previous

    # --- session ---------------------------------------------------------------------------------------------
    def open(self) -> Any:
        """Read the service root and log in: a session (sushy's SessionAuth: POST to the root's Links.Sessions)
        for ``auth: session``, the account on every request for ``basic``, nothing for ``none``."""
        session = self.connector._session  # sushy's own session
        if self.auth_mode == "basic":
            self.connector.set_http_basic_auth(self.credentials.username, self.credentials.password)
        if self.auth_mode != "session":
            root = _PlainRoot(self._json("/redfish/v1/", "the service root"))
            self._root = root
            return root
        session.auth = None
        auth = sushy_auth.SessionAuth(username=self.credentials.username, password=self.credentials.password)
        with self._mapped("login"):
            sushy_root = sushy.Sushy(self.endpoint.url, auth=auth, connector=self.connector)
        location = auth.get_session_resource_id()
        if location:
            try:
                self.resolve(str(location))
            except DeviceError:
                # the session lives elsewhere: forget it without a request there, and use nothing of it
                auth.reset_session_attrs()
                sushy_root._auth = None
                raise
        self._root = sushy_root
        return sushy_root

    def ensure_open(self) -> Any:
        with self._lock:
            return self.root

    @property
    def service_root(self) -> dict[str, Any]:
        """The service root document as read when the connection opened."""
        root = self.ensure_open()
        doc = getattr(root, "json", None)
        return doc if isinstance(doc, dict) else {}

    def _json(self, target: str, what: str) -> dict[str, Any]:
        with self._mapped(f"GET {target}"):
            resp = self.connector.get(target)
        try:
            doc = resp.json()
        except ValueError as exc:
            raise DeviceError(f"{self.name}: GET {target}: {what} is not JSON") from exc
        if not isinstance(doc, dict):
            raise DeviceError(f"{self.name}: GET {target}: {what} is not a JSON object")
        return doc

    def auth_for_stream(self) -> tuple[dict[str, str], tuple[str, str] | None]:
        """Headers and basic-auth pair for a second HTTP client of this device (the event stream)."""
        self.ensure_open()
        session = self.connector._session
        headers = {"X-Auth-Token": session.headers["X-Auth-Token"]} if "X-Auth-Token" in session.headers else {}
        basic = session.auth if isinstance(session.auth, tuple) else None
        return headers, basic

    def relogin(self) -> None:
        """Forget the session (the device no longer knows it) and log in again."""
        with self._lock:
            root, self._root = self._root, None
            auth = getattr(root, "_auth", None)
            if isinstance(auth, sushy_auth.SessionAuth):
                auth.reset_session_attrs()
                root._auth = None  # the device forgot it: nothing to delete
        self.ensure_open()

    def close(self) -> None:
        """Delete the session on the device (auth: session), then close the connections."""
        with self._lock, contextlib.suppress(Exception):
            super().close()

    # --- requests --------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _mapped(self, doing: str) -> Iterator[None]:
        """bitten.core.redfish's errors, and this module's own causes, as DeviceError naming the CDU."""
        try:
            with translated(self.endpoint, self.credentials, doing):
                yield
        except RedfishError as exc:
            cause = exc.__cause__ or exc.__context__
            while cause is not None and not isinstance(cause, (OriginRefused, TooLarge, DeadlinePassed)):
                cause = cause.__context__
            if cause is not None:
                raise DeviceError(f"{self.name}: {doing}: {cause}") from None
            deadline = self.budget.deadline
            if deadline is not None and time.monotonic() >= deadline - 0.05:
                raise DeviceError(f"{self.name}: {doing}: the read deadline passed ({exc.message})") from None
            fix = ""
            if "TLS verification failed" in exc.message:
                fix = " (fix: give the CA that signed the CDU's certificate as its ca_file)"
            elif exc.fix:
                fix = f" (fix: {exc.fix})"
            raise DeviceError(f"{exc.where}: {exc.message}{fix}") from None
        except (sushy_exc.SushyError, AttributeError, KeyError, TypeError, ValueError) as exc:
            # sushy could not make sense of the device's answer (an error body that is not Redfish's, say)
            raise DeviceError(f"{self.name}: {doing}: the device's answer could not be understood "
                              f"({exc.__class__.__name__}: {str(exc)[:200]})") from None

    def get_json(self, path: str, optional: bool = False) -> dict[str, Any]:
        """GET a document of the device (a path, or a link it gave: pinned to its origin) as a JSON object."""
        target = self.resolve(path)
        self.ensure_open()
        return self._json(target, "the answer")

    def patch(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> int:
        target = self.resolve(path)
        self.ensure_open()
        with self._mapped(f"PATCH {target}"):
            resp = self.connector.patch(target, data=body, headers=headers)
        return int(resp.status_code)
