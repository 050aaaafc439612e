"""Reaching one BMC: endpoint, TLS, timeouts, retries with backoff, and sessions — over sushy's connector.

sushy retries a little on its own (connection errors, 5xx on GET, with fixed delays); bitten replaces that with
one policy for every request: timeouts, connection resets and 5xx are retried with exponential backoff and
jitter, 401/403 fail at once (retrying a wrong password only locks the account), TLS failures fail at once
(a wrong certificate does not get better). Errors come out as bitten.core.redfish.errors naming the BMC.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import requests
import sushy
from sushy import auth as sushy_auth
from sushy import exceptions as sushy_exc
from sushy.connector import Connector

from bitten.core.redfish.credentials import Credentials
from bitten.core.redfish.errors import (
    BmcAuthError,
    BmcNotFound,
    BmcRequestError,
    BmcServerError,
    BmcUnreachable,
    BmcUnsupported,
    RedfishError,
)

LOG = logging.getLogger(__name__)

Flavour = Literal["hpe_ilo", "generic"]


@dataclass(frozen=True)
class Endpoint:
    """One node's BMC: where it answers and which system it manages."""

    #: inventory host name of the node
    host: str
    #: scheme://address[:port]
    url: str
    system_id: str = "1"
    flavour: Flavour = "hpe_ilo"

    @property
    def where(self) -> str:
        return f"BMC {self.url} system {self.system_id} (host {self.host})"

    @property
    def system_path(self) -> str:
        return f"/redfish/v1/Systems/{self.system_id}"


@dataclass(frozen=True)
class Tls:
    """Certificate verification: on unless a site turns it off explicitly; ``ca_file`` names the CA bundle."""

    verify: bool = True
    ca_file: str | None = None

    @property
    def requests_verify(self) -> bool | str:
        if not self.verify:
            return False
        return self.ca_file or True


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    read: float = 60.0
    #: how long a power transition may take before the node is reported failed
    power: float = 300.0
    #: how often the power state is polled while waiting
    poll: float = 2.0


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter for transient failures (timeouts, resets, 5xx)."""

    attempts: int = 5
    initial_delay: float = 0.5
    max_delay: float = 10.0
    multiplier: float = 2.0
    #: +/- this fraction of each delay, so that a fleet does not retry in lock-step
    jitter: float = 0.2

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        base = min(self.max_delay, self.initial_delay * self.multiplier ** (attempt - 1))
        return max(0.0, base * (1 + random.uniform(-self.jitter, self.jitter)))


@dataclass
class Counters:
    """Requests and retries made through one connector (for reports and the bench)."""

    requests: int = 0
    retries: int = 0


class RetryingConnector(Connector):  # type: ignore[misc]
    """sushy's connector with bitten's retry policy around every request."""

    def __init__(self, endpoint: Endpoint, tls: Tls, timeouts: Timeouts, retry: RetryPolicy,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        # server_side_retries=1 turns sushy's own retry loops into a single attempt
        super().__init__(endpoint.url, verify=tls.requests_verify, server_side_retries=1,
                         server_side_retries_delay=0, default_request_timeout=timeouts.read,
                         connect_timeout=timeouts.connect)
        self.endpoint = endpoint
        self.retry = retry
        self.counters = Counters()
        self._sleep = sleep
        self._lock = threading.Lock()

    def _op(self, method: str, path: str = "", data: Any = None, headers: Any = None, blocking: bool = False,
            timeout: Any = None, server_side_retries_left: int | None = None, allow_reauth: bool = True,
            **kwargs: Any) -> requests.Response:
        attempt = 0
        while True:
            attempt += 1
            self.counters.requests += 1
            try:
                response: requests.Response = super()._op(
                    method, path, data=data, headers=headers, blocking=blocking, timeout=timeout,
                    server_side_retries_left=0, allow_reauth=allow_reauth, **kwargs)
                return response
            except (sushy_exc.ServerSideError, sushy_exc.ConnectionError) as exc:
                if attempt >= self.retry.attempts or _tls_failure(exc):
                    exc.bitten_attempts = attempt
                    raise
                delay = self.retry.delay(attempt)
                self.counters.retries += 1
                LOG.warning("%s: %s %s failed (%s); retry %d/%d in %.2f s", self.endpoint.where, method, path,
                            _reason(exc), attempt, self.retry.attempts - 1, delay)
                self._sleep(delay)


def _tls_failure(exc: BaseException) -> bool:
    return isinstance(exc.__context__, requests.exceptions.SSLError)


def _reason(exc: BaseException) -> str:
    """A short reason for a transport failure, without URLs or request bodies."""
    cause = exc.__context__
    if isinstance(exc, sushy_exc.HTTPError):
        return f"HTTP {exc.status_code}"
    if isinstance(cause, requests.exceptions.SSLError):
        return "TLS verification failed"
    if isinstance(cause, requests.exceptions.Timeout):
        return "timed out"
    if isinstance(cause, requests.exceptions.ConnectionError):
        text = str(cause)
        for marker in ("Connection reset", "Connection refused", "Connection aborted", "RemoteDisconnected",
                       "Name or service not known", "No route to host"):
            if marker in text:
                return marker.lower()
        return "connection failed"
    return exc.__class__.__name__


def _extended_message(exc: sushy_exc.HTTPError) -> str:
    """The BMC's own explanation (Redfish error message and @Message.ExtendedInfo), when it gives one."""
    parts: list[str] = []
    for info in exc.extended_info or []:
        if isinstance(info, dict):
            text = str(info.get("Message") or info.get("MessageId") or "")
            if text and text not in parts:
                parts.append(text)
    detail = str(exc.detail or "")
    if detail and detail not in parts and not detail.startswith("See @Message.ExtendedInfo"):
        parts.insert(0, detail)
    if not parts and exc.code and exc.code != "Base.1.0.GeneralError":
        parts.append(str(exc.code))
    return "; ".join(parts)


@contextlib.contextmanager
def translated(endpoint: Endpoint, credentials: Credentials | None = None, doing: str = "") -> Iterator[None]:
    """Turn sushy's exceptions into bitten.core.redfish.errors naming the BMC (and never the password)."""
    what = f"{doing}: " if doing else ""
    try:
        yield
    except RedfishError:
        raise
    except sushy_exc.AccessError as exc:
        user = f" as user {credentials.username!r}" if credentials else ""
        raise BmcAuthError(endpoint.where, f"{what}authentication failed{user} (HTTP {exc.status_code})",
                           fix="check the BMC user name and password; bitten does not retry, so that the "
                           "account is not locked") from None
    except sushy_exc.ServerSideError as exc:
        attempts = getattr(exc, "bitten_attempts", 1)
        detail = _extended_message(exc)
        raise BmcServerError(endpoint.where, f"{what}HTTP {exc.status_code} after {attempts} attempt(s)"
                             + (f": {detail}" if detail else "")) from None
    except sushy_exc.ConnectionError as exc:
        attempts = getattr(exc, "bitten_attempts", 1)
        reason = _reason(exc)
        if reason == "TLS verification failed":
            found = re.search(r"certificate verify failed: ([^(]+)", str(exc.__context__))
            why = f" ({found.group(1).strip().rstrip('.')})" if found else ""
            raise BmcUnreachable(endpoint.where, f"{what}TLS verification failed{why}",
                                 fix="give the CA that signed the BMC's certificate (--ca, hardware_bmc_ca_path "
                                 "or the stack's bmcCaFile)") from None
        raise BmcUnreachable(endpoint.where, f"{what}{reason} after {attempts} attempt(s)") from None
    except sushy_exc.ResourceNotFoundError:
        raise BmcNotFound(endpoint.where, f"{what}not found (HTTP 404)") from None
    except sushy_exc.HTTPError as exc:
        detail = _extended_message(exc)
        raise BmcRequestError(endpoint.where, f"{what}refused with HTTP {exc.status_code}"
                              + (f": {detail}" if detail else "")) from None
    except (sushy_exc.MissingAttributeError, sushy_exc.MissingActionError) as exc:
        raise BmcUnsupported(endpoint.where, f"{what}{exc.message}") from None
    except sushy_exc.InvalidParameterValueError as exc:
        raise BmcRequestError(endpoint.where, f"{what}{exc.message}") from None
    except sushy_exc.SushyError as exc:
        raise RedfishError(endpoint.where, f"{what}{exc.message or exc.__class__.__name__}") from None


class Connection:
    """An authenticated Redfish service root for one BMC; a context manager that logs out on exit.

    hpe_ilo BMCs get a Redfish session (POST SessionService/Sessions, X-Auth-Token) and never basic auth: a
    failed session login followed by a basic-auth attempt counts twice against iLO's login-failure delay.
    Generic BMCs try a session and fall back to basic auth (the sushy-tools emulator has no SessionService).
    """

    def __init__(self, endpoint: Endpoint, credentials: Credentials, tls: Tls | None = None,
                 timeouts: Timeouts | None = None, retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.endpoint = endpoint
        self.credentials = credentials
        self.tls = tls or Tls()
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetryPolicy()
        self.connector = RetryingConnector(endpoint, self.tls, self.timeouts, self.retry, sleep)
        self._root: Any = None

    @property
    def root(self) -> Any:
        if self._root is None:
            self.open()
        return self._root

    def open(self) -> Any:
        auth_cls = sushy_auth.SessionAuth if self.endpoint.flavour == "hpe_ilo" else sushy_auth.SessionOrBasicAuth
        auth = auth_cls(username=self.credentials.username, password=self.credentials.password)
        with translated(self.endpoint, self.credentials, "login"):
            self._root = sushy.Sushy(self.endpoint.url, auth=auth, connector=self.connector)
        return self._root

    def get_json(self, path: str, optional: bool = False) -> dict[str, Any]:
        """GET a resource; with ``optional`` a 404 gives an empty mapping instead of BmcNotFound."""
        try:
            with translated(self.endpoint, self.credentials, f"GET {path}"):
                body = self.connector.get(path).json()
        except BmcNotFound:
            if optional:
                return {}
            raise
        return body if isinstance(body, dict) else {}

    def close(self) -> None:
        root, self._root = self._root, None
        if root is not None:
            auth = getattr(root, "_auth", None)
            if auth is not None:
                with contextlib.suppress(Exception):
                    auth.close()
                root._auth = None
        self.connector.close()

    def __enter__(self) -> Connection:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
