"""What can go wrong talking to a Redfish service (a BMC, a CDU, a PDU), each error naming the device it concerns.

One hierarchy for every device type: ``RedfishError`` and its kinds below. ``where`` names the service and the
inventory host (``Endpoint.where``), ``message`` what happened, ``fix`` what to do; ``permanent`` errors are not
worth another attempt (a fleet reports them at once). ``translated()`` turns sushy's and requests' exceptions into
these, never putting a password, a token or a request body into the text.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import requests
from sushy import exceptions as sushy_exc

from bitten.core.retry import attempts_of

if TYPE_CHECKING:
    from bitten.core.redfish.credentials import Credentials


class RedfishError(Exception):
    """A Redfish operation failed; ``where`` names the service and the host, ``message`` what happened."""

    #: retrying cannot help (wrong credentials, a refused setting); the fleet reports it without more attempts
    permanent = False

    def __init__(self, where: str, message: str, fix: str | None = None) -> None:
        self.where = where
        self.message = message
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}"
        return f"{text} (fix: {self.fix})" if self.fix else text


class RedfishAuthError(RedfishError):
    """401/403: wrong user name or password, or an account without the privilege. Never retried."""

    permanent = True


class RedfishUnreachable(RedfishError):
    """No (complete) answer: connection refused or reset, timeouts, the request's deadline, TLS failures."""


class RedfishServerError(RedfishError):
    """The service kept answering 5xx after every retry (or once, for a request that is not repeated)."""


class RedfishRequestError(RedfishError):
    """The service refused a request (4xx other than 401/403): an unknown attribute, a value it does not allow."""

    permanent = True


class RedfishNotFound(RedfishRequestError):
    """404: the service has no such resource (optional parts of an inventory tolerate it)."""


class RedfishUnsupported(RedfishError):
    """The service does not offer what is asked of it (no BIOS resource, no virtual media, no UpdateService)."""

    permanent = True


class RedfishBadResponse(RedfishError):
    """An answer bitten will not use: not JSON, not an object, or larger than the size cap."""

    permanent = True


class RedfishForeignOrigin(RedfishBadResponse):
    """A link, a Location or a redirect points at another origin: nothing (least of all credentials) is sent."""


class PowerTimeout(RedfishError):
    """The system did not reach the requested power state in time."""


class PlanError(RedfishError):
    """The desired state cannot be applied to what the BMC reports (checked before anything is written)."""

    permanent = True


class CredentialsError(Exception):
    """Credentials are missing or stored unsafely; names the variable or file and the fix."""


class UnknownFlavour(ValueError):
    """A flavour name that no module in bitten.core.redfish.flavours registers."""


def transport_reason(exc: BaseException) -> str:
    """A short reason for a transport failure, without URLs or request bodies."""
    cause = exc.__context__ if isinstance(exc, sushy_exc.SushyError) else exc
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
    if isinstance(cause, requests.exceptions.ChunkedEncodingError):
        return "the answer broke off"
    return exc.__class__.__name__


def _extended_message(exc: sushy_exc.HTTPError) -> str:
    """The service's own explanation (Redfish error message and @Message.ExtendedInfo), when it gives one."""
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
def translated(where: str, credentials: Credentials | None = None, doing: str = "",
               ca_hint: str = "give the CA that signed the device's certificate") -> Iterator[None]:
    """Turn sushy's exceptions into the errors above, naming ``where`` (and never the password)."""
    what = f"{doing}: " if doing else ""
    try:
        yield
    except RedfishError:
        raise
    except sushy_exc.AccessError as exc:
        user = f" as user {credentials.username!r}" if credentials else ""
        raise RedfishAuthError(where, f"{what}authentication failed{user} (HTTP {exc.status_code})",
                               fix="check the user name and password; bitten does not retry, so that the "
                               "account is not locked") from None
    except sushy_exc.ServerSideError as exc:
        detail = _extended_message(exc)
        raise RedfishServerError(where, f"{what}HTTP {exc.status_code} after {attempts_of(exc)} attempt(s)"
                                 + (f": {detail}" if detail else "")) from None
    except sushy_exc.ConnectionError as exc:
        reason = transport_reason(exc)
        if reason == "TLS verification failed":
            found = re.search(r"certificate verify failed: ([^(]+)", str(exc.__context__))
            why = f" ({found.group(1).strip().rstrip('.')})" if found else ""
            raise RedfishUnreachable(where, f"{what}TLS verification failed{why}", fix=ca_hint) from None
        raise RedfishUnreachable(where, f"{what}{reason} after {attempts_of(exc)} attempt(s)") from None
    except sushy_exc.ResourceNotFoundError:
        raise RedfishNotFound(where, f"{what}not found (HTTP 404)") from None
    except sushy_exc.HTTPError as exc:
        detail = _extended_message(exc)
        raise RedfishRequestError(where, f"{what}refused with HTTP {exc.status_code}"
                                  + (f": {detail}" if detail else "")) from None
    except (sushy_exc.MissingAttributeError, sushy_exc.MissingActionError) as exc:
        raise RedfishUnsupported(where, f"{what}{exc.message}") from None
    except sushy_exc.InvalidParameterValueError as exc:
        raise RedfishRequestError(where, f"{what}{exc.message}") from None
    except sushy_exc.SushyError as exc:
        raise RedfishError(where, f"{what}{exc.message or exc.__class__.__name__}") from None
