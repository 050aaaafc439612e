"""What can go wrong talking to a BMC, each error naming the BMC (and the node) it concerns."""

from __future__ import annotations


class RedfishError(Exception):
    """A BMC operation failed; ``where`` names the BMC and the node, ``message`` what happened."""

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


class BmcAuthError(RedfishError):
    """401/403: wrong user name or password, or an account without the privilege. Never retried."""

    permanent = True


class BmcUnreachable(RedfishError):
    """No answer: connection refused or reset, timeouts, TLS failures — after every retry."""


class BmcServerError(RedfishError):
    """The BMC kept answering 5xx after every retry."""


class BmcRequestError(RedfishError):
    """The BMC refused a request (4xx other than 401/403): an unknown attribute, a value it does not allow."""

    permanent = True


class BmcNotFound(BmcRequestError):
    """404: the BMC has no such resource (optional parts of the inventory tolerate it)."""


class BmcUnsupported(RedfishError):
    """The BMC does not offer what the desired state needs (no BIOS resource, no virtual media, ...)."""

    permanent = True


class PowerTimeout(RedfishError):
    """The system did not reach the requested power state in time."""


class PlanError(RedfishError):
    """The desired state cannot be applied to what the BMC reports (checked before anything is written)."""

    permanent = True


class CredentialsError(Exception):
    """BMC credentials are missing or stored unsafely; names the variable or file and the fix."""
