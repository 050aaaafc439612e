"""Every request to a Redfish service goes through this connector (sushy's Connector, made strict).

What it adds to sushy's (whose resources it still serves: ``sushy.Sushy``, VirtualMedia, UpdateService, ...):

- **Origin pinning.** A path, an absolute ``@odata.id``, a session ``Location`` or a redirect that resolves to
  another origin (scheme, host, port) than the endpoint's raises RedfishForeignOrigin before anything is sent:
  credentials and session tokens go to their own origin only. Redirects are followed by hand (GET/HEAD, same
  origin, at most 5), never by requests, which would carry ``X-Auth-Token`` along.
- **A wall-clock deadline per request** (``Timeouts.request``): connect and each read are capped by what is left,
  and the body is read against the deadline (the socket timeout is set before every read), so a device that
  trickles its answer fails on time instead of holding a worker. **A size cap** (``Limits.max_body``): a larger
  Content-Length is refused before the body is read; a longer body is cut off when the cap is passed.
- **One retry policy** (bitten.core.retry): timeouts, resets and 5xx are retried with backoff for idempotent
  requests (GET, HEAD, PUT, PATCH of property values, DELETE); a POST (a reset, a power action, any action) is
  retried only when it never left this machine (connection refused, connect timeout). TLS failures and 4xx are
  never retried. A 401 on a session token (the session expired) re-creates the session once and repeats the
  request, which the service refused unseen.
- **Persistent connections** for the life of the connector (sushy sends ``Connection: close`` on every request),
  no proxies or netrc from the environment (a BMC is reached directly; credentials never leave for a proxy).
- ``preload(path, document)``: the next GET of ``path`` is answered from a document just read, so that a sushy
  resource can be built from what bitten already has without asking the service twice.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import requests
import urllib3
from sushy import exceptions as sushy_exc
from sushy.connector import Connector
from sushy.taskmonitor import TaskMonitor

from bitten.core import retry
from bitten.core.redfish.endpoint import Endpoint, Limits, Timeouts, Tls, origin_of
from bitten.core.redfish.errors import RedfishBadResponse, RedfishForeignOrigin, RedfishRequestError, transport_reason
from bitten.core.transport import never_sent, retry_after

LOG = logging.getLogger(__name__)

#: methods whose repetition leaves the service as one request would (Redfish PATCHes set properties to values)
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
REDIRECTS = 5
CHUNK = 64 * 1024


class DeadlineExceeded(requests.exceptions.Timeout):
    """The request's wall-clock deadline passed before the whole answer arrived."""


@dataclass
class Counters:
    """Requests and retries made through one connector (for reports and the bench)."""

    requests: int = 0
    retries: int = 0


class _Preloaded:
    """A response-shaped wrapper of a document already read (what sushy's JSON reader needs of a response)."""

    status_code = 200

    def __init__(self, document: dict[str, Any], headers: Mapping[str, str]) -> None:
        self._document = document
        self.headers = requests.structures.CaseInsensitiveDict(headers)

    @property
    def content(self) -> bytes:
        return json.dumps(self._document).encode()

    def json(self) -> dict[str, Any]:
        return self._document


def _retry_after(error: BaseException) -> float | None:
    response = getattr(error, "_bitten_response", None)
    return retry_after(response.headers) if response is not None else None


class RedfishConnector(Connector):  # type: ignore[misc]
    """sushy's connector with origin pinning, per-request deadlines, a size cap and bitten's retry policy."""

    def __init__(self, endpoint: Endpoint, tls: Tls | None = None, timeouts: Timeouts | None = None,
                 retry_policy: retry.Backoff | None = None, limits: Limits | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        self.endpoint = endpoint
        self.tls = tls or Tls()
        self.timeouts = timeouts or Timeouts()
        self.retry = retry_policy or retry.Backoff()
        self.limits = limits or Limits()
        super().__init__(endpoint.url, verify=self.tls.requests_verify, server_side_retries=0,
                         default_request_timeout=self.timeouts.read, connect_timeout=self.timeouts.connect)
        self._session.trust_env = False
        self._session.headers.pop("Connection", None)
        self._session.headers["Accept"] = "application/json"
        self.origin = origin_of(endpoint.url)
        self.counters = Counters()
        self._sleep = sleep
        self._clock = clock
        self._preloaded: dict[str, _Preloaded] = {}
        #: path -> its checked absolute URL (a run asks for the same few paths again and again)
        self._resolved: dict[str, str] = {}

    # --- addresses ------------------------------------------------------------------------------------------
    def url_for(self, path: str) -> str:
        """The absolute URL of ``path`` (relative or absolute), refused when it leaves the endpoint's origin."""
        known = self._resolved.get(path)
        if known is not None:
            return known
        url = str(urljoin(self._url, path) if path else self._url)
        if origin_of(url) != self.origin:
            raise RedfishForeignOrigin(self.endpoint.where, f"{_short(path)} is on another origin than "
                                       f"{self.endpoint.url}: nothing was sent there",
                                       fix="a device should link to its own resources; check its configuration "
                                       "(a proxy or a rewritten @odata.id)")
        if len(self._resolved) < 1024:
            self._resolved[path] = url
        return url

    def preload(self, path: str, document: dict[str, Any], headers: Mapping[str, str] | None = None) -> None:
        """Answer the next GET of ``path`` with ``document`` (read a moment ago), without a request."""
        self._preloaded[self.url_for(path)] = _Preloaded(document, headers or {})

    # --- requests -------------------------------------------------------------------------------------------
    def _op(self, method: str, path: str = "", data: Any = None, headers: Any = None, blocking: bool = False,
            timeout: Any = None, server_side_retries_left: int | None = None, allow_reauth: bool = True,
            **extra: Any) -> Any:
        url = self.url_for(path)
        if method == "GET" and self._preloaded:
            preloaded = self._preloaded.pop(url, None)
            if preloaded is not None:
                return preloaded
        request_headers = self._headers(headers, data)
        idempotent = method in IDEMPOTENT

        def once() -> requests.Response:
            self.counters.requests += 1
            response = self._send(method, url, data, request_headers, extra)
            if response.status_code >= 500:
                try:
                    sushy_exc.raise_for_response(method, url, response)
                except sushy_exc.HTTPError as exc:
                    exc._bitten_response = response
                    raise
            return response

        def retry_if(error: BaseException) -> bool:
            if isinstance(error, sushy_exc.ServerSideError):
                return idempotent
            if isinstance(error, sushy_exc.ConnectionError):
                cause = error.__context__
                if isinstance(cause, requests.exceptions.SSLError):
                    return False
                return idempotent or never_sent(cause)
            return False

        def on_retry(attempt: int, error: BaseException, delay: float) -> None:
            self.counters.retries += 1
            LOG.warning("%s: %s %s failed (%s); retry %d/%d in %.2f s", self.endpoint.where, method, _short(path),
                        transport_reason(error), attempt, self.retry.attempts - 1, delay)

        response = retry.call(once, self.retry, retry_if, sleep=self._sleep, clock=self._clock, on_retry=on_retry,
                              delay_for=_retry_after)
        if response.status_code == 401 and allow_reauth and self._session_expired(method, url):
            LOG.info("%s: the session expired; logging in again", self.endpoint.where)
            self._auth.refresh_session()
            return self._op(method, path, data=data, headers=headers, blocking=blocking, timeout=timeout,
                            allow_reauth=False, **extra)
        sushy_exc.raise_for_response(method, url, response)
        if blocking and response.status_code == 202:
            if not response.headers.get("Location"):
                raise sushy_exc.ConnectionError(url=url, error="HTTP 202 without a Location header")
            monitor = TaskMonitor.from_response(self, response, path)
            monitor.wait(timeout or self.timeouts.read)
            response = monitor.response
            sushy_exc.raise_for_response(method, url, response)
        return response

    def _session_expired(self, method: str, url: str) -> bool:
        """A 401 answered a request made with a session token (not the login itself): the session has ended."""
        if self._auth is None or "X-Auth-Token" not in self._session.headers:
            return False
        if method == "POST" and self._sessions_uri is not None and url == self.url_for(self._sessions_uri):
            return False
        return bool(self._auth.can_refresh_session())

    def _headers(self, headers: Mapping[str, Any] | None, data: Any) -> dict[str, str]:
        out = dict(headers or {})
        lower = {k.lower() for k in out}
        if data is not None and "content-type" not in lower:
            out["Content-Type"] = "application/json"
        if "odata-version" not in lower:
            out["OData-Version"] = "4.0"
        if "accept-encoding" not in lower:
            # some services weaken the ETag of compressed answers; a few KB of JSON do not need compression
            out["Accept-Encoding"] = "identity"
        return {k: v for k, v in out.items() if v is not None}

    def _send(self, method: str, url: str, data: Any, headers: dict[str, str],
              extra: Mapping[str, Any]) -> requests.Response:
        """One attempt: the request and its whole answer within the deadline; same-origin redirects by hand."""
        deadline = retry.Deadline(self.timeouts.request, self._clock)
        for _hop in range(REDIRECTS + 1):
            try:
                response: requests.Response = self._session.request(
                    method, url, json=data, headers=headers, verify=self._verify, stream=True,
                    allow_redirects=False, timeout=(deadline.cap(self.timeouts.connect),
                                                    deadline.cap(self.timeouts.read)), **extra)
                self._read_body(response, deadline)
            except requests.exceptions.RequestException as exc:
                raise sushy_exc.ConnectionError(url=_short(url), error=transport_reason(exc)) from exc
            if not response.is_redirect:
                return response
            target = self.url_for(urljoin(url, response.headers["Location"]))
            if method not in ("GET", "HEAD"):
                raise RedfishRequestError(self.endpoint.where, f"{method} {_short(url)} was redirected to "
                                          f"{_short(target)}; bitten repeats no write at another address")
            url = target
        raise RedfishBadResponse(self.endpoint.where, f"{method} {_short(url)}: more than {REDIRECTS} redirects")

    def _read_body(self, response: requests.Response, deadline: retry.Deadline) -> None:
        """Read the whole answer against the deadline and the size cap; keep it as the response's content."""
        cap = self.limits.max_body
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > cap:
            response.close()
            raise RedfishBadResponse(self.endpoint.where, f"{_short(response.url)}: the answer is {int(length)} "
                                     f"bytes, more than the {cap}-byte cap; not read")
        raw = response.raw
        sock = _socket_of(raw)
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                remaining = deadline.remaining()
                if remaining <= 0:
                    response.close()
                    raise DeadlineExceeded(f"no complete answer within {self.timeouts.request:g} s")
                if sock is not None:
                    sock.settimeout(min(self.timeouts.read, remaining))
                chunk = raw.read1(CHUNK, decode_content=True)
                if not chunk:
                    break
                size += len(chunk)
                if size > cap:
                    response.close()
                    raise RedfishBadResponse(self.endpoint.where, f"{_short(response.url)}: the answer passed the "
                                             f"{cap}-byte cap; the rest was not read")
                chunks.append(chunk)
        except requests.exceptions.RequestException:
            raise
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as exc:
            response.close()
            raise requests.exceptions.ReadTimeout(str(exc)) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            response.close()
            raise requests.exceptions.ConnectionError(str(exc)) from None
        response._content = b"".join(chunks)
        response._content_consumed = True  # type: ignore[attr-defined]
        raw.release_conn()


def _socket_of(raw: Any) -> socket.socket | None:
    connection = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _short(url: str) -> str:
    """A URL for messages: never its query string (which may carry a token)."""
    return url.split("?", 1)[0]
