"""An authenticated Redfish service: the one client of every device type (BMCs, CDUs, PDUs, chassis power).

Usage (any device)::

    with Connection(Endpoint("cdu1", "https://10.0.0.5", kind="CDU", flavour="generic"), creds, Tls(ca_file=ca),
                    Timeouts(request=5), Backoff(attempts=3)) as conn:
        unit = conn.get_json("/redfish/v1/ThermalEquipment/CDUs/1")
        pumps = [conn.get_json(p) for p in members(conn.follow(unit, "Pumps"))]

- ``open()`` reads the service root (``GET /redfish/v1/``, no credentials), then authenticates as the endpoint's
  flavour says (bitten.core.redfish.flavours): a Redfish session (``POST SessionService/Sessions``, the token in
  ``X-Auth-Token``) or basic auth. ``close()`` deletes the session (``DELETE`` its Location, at the service's own
  origin only); an expired session is re-created by the connector on the next request.
- ``get_json(path)`` / ``get(path)``: GET a resource as a JSON object (``get`` also gives the ETag), within the
  request deadline and the size cap, with retries (bitten.core.redfish.connector); ``follow(doc, *keys)`` GETs the
  ``@odata.id`` at ``keys``; links to another origin raise RedfishForeignOrigin. ``expand=1`` asks for ``$expand``
  when the root's ProtocolFeaturesSupported.ExpandQuery offers it (one request instead of one per member).
- ``patch``/``post``/``delete`` go through the same connector; a POST is never repeated blindly.
- ``root`` is sushy's service root, for sushy resources (``sushy.resources...``, bitten.core.redfish.thermal).
- Every failure comes out as a bitten.core.redfish.errors error naming ``Endpoint.where``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import sushy
from sushy import auth as sushy_auth
from sushy import exceptions as sushy_exc

from bitten.core.redfish import flavours
from bitten.core.redfish.connector import RedfishConnector
from bitten.core.redfish.credentials import Credentials
from bitten.core.redfish.document import link, members
from bitten.core.redfish.endpoint import Endpoint, Limits, Timeouts, Tls
from bitten.core.redfish.errors import RedfishBadResponse, RedfishNotFound, translated
from bitten.core.retry import Backoff

LOG = logging.getLogger(__name__)

ROOT = "/redfish/v1/"
BMC_CA_HINT = "give the CA that signed the BMC's certificate (--ca, hardware_bmc_ca_path or the stack's bmcCaFile)"


class FlavourAuth(sushy_auth.SessionAuth):  # type: ignore[misc]
    """Session or basic auth as the flavour says, decided from the service root sushy has just read."""

    def __init__(self, username: str | None, password: str | None, mode: flavours.AuthMode) -> None:
        super().__init__(username=username, password=password)
        self.mode = mode
        self.basic = False

    def _do_authenticate(self) -> None:
        if self.mode == "none":
            self.basic = True
            return
        if self.mode == "basic" or (self.mode == "auto" and not _offers_sessions(self._root_resource.json)):
            self._use_basic()
            return
        try:
            super()._do_authenticate()
        except sushy_exc.HTTPError as exc:
            # a service that links a SessionService but does not take logins (404, 405, 501: a read-only mockup,
            # a half-implemented BMC) gets basic auth; a refused password (401/403) does not get a second try
            if self.mode != "auto" or isinstance(exc, sushy_exc.AccessError) or exc.status_code not in (404, 405, 501):
                raise
            LOG.info("the service refused a session login with HTTP %s; using basic auth", exc.status_code)
            self.reset_session_attrs()
            self._use_basic()

    def _use_basic(self) -> None:
        self.basic = True
        self._connector.set_http_basic_auth(self._username, self._password)

    def can_refresh_session(self) -> bool:
        return not self.basic and bool(super().can_refresh_session())


def _offers_sessions(root: dict[str, Any]) -> bool:
    return bool(link(root, "Links", "Sessions") or link(root, "SessionService"))


class Connection:
    """An authenticated Redfish service root for one endpoint; a context manager that logs out on exit."""

    def __init__(self, endpoint: Endpoint, credentials: Credentials | None, tls: Tls | None = None,
                 timeouts: Timeouts | None = None, retry: Backoff | None = None, limits: Limits | None = None,
                 sleep: Callable[[float], None] = time.sleep, auth: flavours.AuthMode | None = None) -> None:
        self.endpoint = endpoint
        self.credentials = credentials
        self.flavour = flavours.get(endpoint.flavour)
        #: how to authenticate: the flavour's way unless the caller says (a CDU configured for basic or none)
        self.auth_mode: flavours.AuthMode = auth or (self.flavour.auth if credentials is not None else "none")
        self.tls = tls or Tls()
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or Backoff()
        self.connector = RedfishConnector(endpoint, self.tls, self.timeouts, self.retry, limits, sleep)
        self._root: Any = None
        self._auth: FlavourAuth | None = None

    # --- session ----------------------------------------------------------------------------------------
    @property
    def root(self) -> Any:
        if self._root is None:
            self.open()
        return self._root

    @property
    def root_json(self) -> dict[str, Any]:
        body = self.root.json
        return body if isinstance(body, dict) else {}

    def open(self) -> Any:
        if self._root is not None:
            return self._root
        creds = self.credentials
        self._auth = FlavourAuth(creds.username if creds else None, creds.password if creds else None, self.auth_mode)
        with self.translated("login"):
            self._root = sushy.Sushy(self.endpoint.url, auth=self._auth, connector=self.connector,
                                     root_prefix=ROOT)
        return self._root

    @property
    def session_uri(self) -> str | None:
        """The session this connection holds (None with basic auth)."""
        return self._auth.get_session_resource_id() if self._auth is not None else None

    def close(self) -> None:
        """Delete the session (at its own origin only), then close the connections."""
        root, self._root = self._root, None
        auth, self._auth = self._auth, None
        try:
            if auth is not None and auth.get_session_resource_id():
                try:
                    with self.translated("log out"):
                        self.connector.delete(auth.get_session_resource_id())
                except Exception as exc:  # a session left behind expires on its own; say so, do not fail
                    LOG.warning("%s: the session was not deleted: %s", self.endpoint.where, exc)
                auth.reset_session_attrs()
        finally:
            if root is not None:
                root._auth = None  # sushy's __del__ would log out a second time
            self.connector.close()

    def __enter__(self) -> Connection:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading ----------------------------------------------------------------------------------------
    def translated(self, doing: str = "") -> contextlib.AbstractContextManager[None]:
        hint = BMC_CA_HINT if self.endpoint.kind == "BMC" else (
            f"give the CA that signed the {self.endpoint.kind}'s certificate")
        return translated(self.endpoint.where, self.credentials, doing, ca_hint=hint)

    def get(self, path: str, optional: bool = False, expand: int | None = None) -> tuple[dict[str, Any], str | None]:
        """GET a resource: its JSON object and its ETag. With ``optional`` a 404 gives ({}, None)."""
        self.open()
        target = self._expanded(path, expand)
        try:
            with self.translated(f"GET {path}"):
                response = self.connector.get(target)
        except RedfishNotFound:
            if optional:
                return {}, None
            raise
        try:
            body = json.loads(response.content) if response.content else {}
        except ValueError:
            raise RedfishBadResponse(self.endpoint.where, f"GET {path}: the answer is not JSON") from None
        if not isinstance(body, dict):
            raise RedfishBadResponse(self.endpoint.where, f"GET {path}: the answer is not a JSON object")
        etag = response.headers.get("ETag") or body.get("@odata.etag")
        return body, etag if isinstance(etag, str) and etag else None

    def get_json(self, path: str, optional: bool = False, expand: int | None = None) -> dict[str, Any]:
        """GET a resource as a JSON object; with ``optional`` a 404 gives an empty mapping."""
        return self.get(path, optional, expand)[0]

    def follow(self, body: dict[str, Any], *keys: str, optional: bool = False) -> dict[str, Any]:
        """GET the resource linked at ``keys`` (``{}`` when there is no such link)."""
        path = link(body, *keys)
        return self.get_json(path, optional) if path else {}

    def members(self, collection: str, optional: bool = False) -> Iterator[dict[str, Any]]:
        """The member documents of a collection, one GET each (or one in all, expanded, where offered)."""
        body = self.get_json(collection, optional, expand=1)
        inline = [m for m in body.get("Members", []) if isinstance(m, dict) and len(m) > 1]
        if inline and len(inline) == len(body.get("Members", [])):
            yield from inline
            return
        for path in members(body):
            yield self.get_json(path, optional)

    def expand_supported(self) -> bool:
        features = self.root_json.get("ProtocolFeaturesSupported") or {}
        expand = features.get("ExpandQuery") or {}
        return bool(isinstance(expand, dict) and (expand.get("ExpandAll") or expand.get("Levels")))

    def _expanded(self, path: str, expand: int | None) -> str:
        if not expand or "?" in path or not self.expand_supported():
            return path
        return f"{path}?$expand=.($levels={int(expand)})"

    # --- writing ----------------------------------------------------------------------------------------
    def patch(self, path: str, data: dict[str, Any], etag: str | None = None, doing: str = "") -> Any:
        with self.translated(doing or f"PATCH {path}"):
            return self.connector.patch(path, data=data, etag=etag)

    def post(self, path: str, data: dict[str, Any] | None = None, doing: str = "") -> Any:
        with self.translated(doing or f"POST {path}"):
            return self.connector.post(path, data=data)

    def delete(self, path: str, doing: str = "") -> Any:
        with self.translated(doing or f"DELETE {path}"):
            return self.connector.delete(path)
