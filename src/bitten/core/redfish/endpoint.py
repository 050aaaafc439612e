"""Where a Redfish service answers and how bitten talks to it: endpoint, origin, TLS, timeouts, limits.

These are plain values, shared by every device type: ``Endpoint(kind="BMC")`` for a node's BMC (the default),
``kind="CDU"`` or ``"PDU"`` for other devices. The origin (scheme, host, port) of ``Endpoint.url`` is the only
place that ever receives the credentials or a session token (see bitten.core.redfish.connector).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

#: the system trust store on Debian; requests would otherwise use certifi's bundle (or REQUESTS_CA_BUNDLE)
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
DEFAULT_PORTS = {"https": 443, "http": 80}

Origin = tuple[str, str, int]


def origin_of(url: str) -> Origin:
    """(scheme, host, port) of an absolute URL, lower-cased, with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, host, port if port is not None else DEFAULT_PORTS.get(scheme, 0)


@dataclass(frozen=True)
class Endpoint:
    """One Redfish service: where it answers, what it is, and (for a BMC) which system it manages."""

    #: inventory host name of the node or device
    host: str
    #: scheme://address[:port]
    url: str
    system_id: str = "1"
    #: a module of bitten.core.redfish.flavours (hpe_ilo, generic, ...)
    flavour: str = "hpe_ilo"
    #: what the service is, for messages: BMC, CDU, PDU
    kind: str = "BMC"

    @property
    def where(self) -> str:
        system = f" system {self.system_id}" if self.kind == "BMC" else ""
        return f"{self.kind} {self.url}{system} (host {self.host})"

    @property
    def system_path(self) -> str:
        return f"/redfish/v1/Systems/{self.system_id}"

    @property
    def origin(self) -> Origin:
        return origin_of(self.url)


@dataclass(frozen=True)
class Tls:
    """Certificate verification: on unless a site turns it off explicitly; ``ca_file`` names the CA bundle."""

    verify: bool = True
    ca_file: str | None = None

    @property
    def requests_verify(self) -> bool | str:
        """What requests' ``verify`` gets: the CA file, else the system store (never REQUESTS_CA_BUNDLE's guess)."""
        if not self.verify:
            return False
        if self.ca_file:
            return self.ca_file
        return SYSTEM_CA_BUNDLE if os.path.exists(SYSTEM_CA_BUNDLE) else True


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    #: the longest wait for any one read from the socket
    read: float = 60.0
    #: wall-clock limit of one request: connect, send, and the whole answer (every retry gets its own)
    request: float = 90.0
    #: how long a power transition may take before the node is reported failed
    power: float = 300.0
    #: how often the power state is polled while waiting
    poll: float = 2.0


@dataclass(frozen=True)
class Limits:
    #: the largest answer bitten reads (an iLO's BIOS attribute registry is ~2 MB; nothing it reads is larger)
    max_body: int = 16 * 1024 * 1024
