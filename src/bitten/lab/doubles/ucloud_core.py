"""UCloud/Core TEST DOUBLE: the part of Core's HTTP API that a provider and its Integration Module use.

This is not UCloud/Core. It stands in for it where the real service cannot run (tests, Molecule, the lab) and
follows the protocol as UCloud's core2 and provider-integration code implement it:

- ``POST /api/providers`` (admin token and a ``Project`` header): create providers, each with its own RSA key pair
  and refresh token; ``GET /api/providers/retrieve?id=`` and ``/browse``; ``POST /api/providers/update`` and
  ``/renewToken``. Names are unique (409), domains must be host names and ports 1-65535 (400).
- ``POST /auth/providers/refresh``: a refresh token gives an access token, an RS256 JWT signed with the
  provider's private key (``sub "#P_<id>"``, role PROVIDER, issuer cloud.sdu.dk, audience all:write, 10 minutes);
  an unknown token gives 401.
- ``GET /api/products/v2/browse`` (filterProvider, filterCategory, filterName, itemsPerPage, next) and
  ``POST /api/products/v2`` (provider token only; a provider registers its own products; a category's accounting
  unit, frequency and freeToUse cannot change).

``POST /testdouble/service-token`` (admin) is the double's own: it mints the JWT Core sends to a provider's IM
(``sub _UCloud``, role SERVICE, signed with the provider's key) so that tests can call the IM as Core would.

Errors are Core's shape: ``{"why": "...", "statusCode": N}``. Admin tokens are opaque strings given at start-up
(real Core uses JWTs for users too). State is in memory, optionally saved to a JSON file (0600; it holds private
keys, as Core's database does).

Standard library, PyJWT and cryptography only: Molecule ships this module into a container as a zipapp.
Run: ``python -m bitten.lab.doubles.ucloud_core --listen 127.0.0.1:8445 --admin-token-file FILE``
(``--tls-cert C --tls-key K`` for TLS)
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import secrets
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "cloud.sdu.dk"
AUDIENCE = "all:write"
ACCESS_TOKEN_SECONDS = 600
PROVIDER_SUBJECT_PREFIX = "#P_"
_HOSTNAME = re.compile(r"^(?i:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.(?i:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?))*$")


class HttpError(Exception):
    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status
        self.why = why


@dataclass
class ProviderRecord:
    resource_id: str
    name: str
    domain: str
    https: bool
    port: int
    project: str
    created_by: str
    created_at: int
    refresh_token: str
    public_key: str
    private_key_pem: str

    def as_core(self) -> dict[str, Any]:
        """Core's Provider JSON (orchestrators.Provider)."""
        return {
            "id": self.resource_id, "createdAt": self.created_at,
            "owner": {"createdBy": self.created_by, "project": self.project},
            "permissions": {"myself": ["ADMIN"], "others": []},
            "specification": {"id": self.name, "domain": self.domain, "https": self.https, "port": self.port,
                              "product": {"id": "", "category": "", "provider": ""}},
            "refreshToken": self.refresh_token, "publicKey": self.public_key,
            "status": {}, "updates": [],
        }


def generate_keys() -> tuple[str, str]:
    """A provider key pair as Core makes it: public key as bare base64 of the DER SubjectPublicKeyInfo."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_der = key.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    return base64.b64encode(public_der).decode(), private_pem


def public_key_pem(public_key_b64: str) -> bytes:
    der = base64.b64decode(public_key_b64)
    return serialization.load_der_public_key(der).public_bytes(serialization.Encoding.PEM,
                                                                serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass
class CoreState:
    admin_tokens: set[str] = field(default_factory=set)
    providers: dict[str, ProviderRecord] = field(default_factory=dict)
    #: provider name -> (category, product name) -> product
    products: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    next_id: int = 1
    #: answer the next N requests with 503 (fault injection for retry tests)
    fail_next: int = 0
    requests: int = 0


class CoreDouble:
    """The UCloud/Core test double as an object: ``start()`` serves in a thread, ``stop()`` ends it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, admin_tokens: set[str] | None = None,
                 tls_cert: str | None = None, tls_key: str | None = None, state_file: str | None = None) -> None:
        self.state = CoreState(admin_tokens=set(admin_tokens or ()))
        self.lock = threading.RLock()
        self.state_file = Path(state_file) if state_file else None
        if self.state_file and self.state_file.exists():
            self._load()
        self.server = ThreadingHTTPServer((host, port), _handler_for(self))
        self.server.daemon_threads = True
        self.scheme = "http"
        if tls_cert:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls_cert, tls_key)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}"

    def start(self) -> CoreDouble:
        self._thread = threading.Thread(target=self.server.serve_forever, name="core-double", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> CoreDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- persistence ----------------------------------------------------------------------------------------
    def _save(self) -> None:
        if self.state_file is None:
            return
        data = {"providers": [asdict(p) for p in self.state.providers.values()], "products": self.state.products,
                "next_id": self.state.next_id}
        tmp = self.state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out)
        tmp.replace(self.state_file)

    def _load(self) -> None:
        assert self.state_file is not None
        data = json.loads(self.state_file.read_text())
        self.state.providers = {p["resource_id"]: ProviderRecord(**p) for p in data.get("providers", [])}
        self.state.products = data.get("products", {})
        self.state.next_id = int(data.get("next_id", 1))

    # --- model ------------------------------------------------------------------------------------------------
    def provider_by_name(self, name: str) -> ProviderRecord | None:
        return next((p for p in self.state.providers.values() if p.name == name), None)

    def create_provider(self, spec: dict[str, Any], project: str, actor: str) -> ProviderRecord:
        name = str(spec.get("id") or "")
        domain = str(spec.get("domain") or "")
        port = spec.get("port")
        if len(domain) > 255 or not _HOSTNAME.match(domain):
            raise HttpError(400, "Domain not valid")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port <= 65535:
            raise HttpError(400, "Port not valid")
        if not name:
            raise HttpError(400, "Must enter a name for provider")
        if self.provider_by_name(name) is not None:
            raise HttpError(409, "Provider already exists with that name")
        public, private = generate_keys()
        record = ProviderRecord(
            resource_id=str(self.state.next_id), name=name, domain=domain, https=bool(spec.get("https")), port=port,
            project=project, created_by=actor, created_at=int(time.time() * 1000),
            refresh_token=secrets.token_urlsafe(32), public_key=public, private_key_pem=private)
        self.state.next_id += 1
        self.state.providers[record.resource_id] = record
        return record

    def access_token(self, refresh_token: str) -> str:
        record = next((p for p in self.state.providers.values()
                       if secrets.compare_digest(p.refresh_token, refresh_token)), None)
        if record is None:
            raise HttpError(401, "Unauthorized")
        now = int(time.time())
        claims = {"sub": PROVIDER_SUBJECT_PREFIX + record.name, "role": "PROVIDER", "principalType": "provider",
                  "iss": ISSUER, "aud": [AUDIENCE], "iat": now, "exp": now + ACCESS_TOKEN_SECONDS}
        return jwt.encode(claims, record.private_key_pem, algorithm="RS256")

    def provider_of_token(self, token: str) -> ProviderRecord:
        try:
            subject = str(jwt.decode(token, options={"verify_signature": False}).get("sub", ""))
        except jwt.PyJWTError:
            raise HttpError(401, "Unauthorized") from None
        record = (self.provider_by_name(subject[len(PROVIDER_SUBJECT_PREFIX):])
                  if subject.startswith(PROVIDER_SUBJECT_PREFIX) else None)
        if record is None:
            raise HttpError(401, "Unauthorized")
        try:
            jwt.decode(token, public_key_pem(record.public_key), algorithms=["RS256"], audience=AUDIENCE,
                       issuer=ISSUER)
        except jwt.PyJWTError:
            raise HttpError(401, "Unauthorized") from None
        return record

    def register_products(self, provider: ProviderRecord, items: list[Any]) -> None:
        current = self.state.products.setdefault(provider.name, {})
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("category"), dict):
                raise HttpError(400, "Bad request: a product needs a category")
            category = item["category"]
            if category.get("provider") != provider.name:
                raise HttpError(403, "Forbidden: a provider can only register its own products")
            for key in ("name", "productType", "type"):
                if not item.get(key):
                    raise HttpError(400, f"Bad request: product field {key} is required")
            if not category.get("name"):
                raise HttpError(400, "Bad request: product category needs a name")
            for existing in current.values():
                old = existing["category"]
                if old["name"] != category["name"]:
                    continue
                for key in ("accountingUnit", "accountingFrequency", "freeToUse"):
                    if old.get(key) != category.get(key):
                        raise HttpError(400, f"Category {category['name']} cannot change its {key}")
        for item in items:
            current[f"{item['category']['name']}/{item['name']}"] = item

    def browse_products(self, query: dict[str, str]) -> dict[str, Any]:
        items: list[dict[str, Any]] = []
        for provider, products in sorted(self.state.products.items()):
            if query.get("filterProvider") and provider != query["filterProvider"]:
                continue
            for product in products.values():
                if query.get("filterCategory") and product["category"]["name"] != query["filterCategory"]:
                    continue
                if query.get("filterName") and product["name"] != query["filterName"]:
                    continue
                items.append(product)
        items.sort(key=lambda p: (p["category"]["provider"], p["category"]["name"], p["name"]))
        return _page(items, query)


def _page(items: list[Any], query: dict[str, str]) -> dict[str, Any]:
    try:
        per_page = int(query.get("itemsPerPage") or 50)
        start = int(query.get("next") or 0)
    except ValueError:
        raise HttpError(400, "Bad request: itemsPerPage and next must be numbers") from None
    per_page = per_page if 0 < per_page <= 250 else 50
    chunk = items[start:start + per_page]
    following = start + per_page
    return {"itemsPerPage": per_page, "items": chunk, "next": str(following) if following < len(items) else None}


# --- HTTP ------------------------------------------------------------------------------------------------------

Route = Callable[["_Request"], Any]


@dataclass
class _Request:
    core: CoreDouble
    headers: dict[str, str]
    query: dict[str, str]
    body: Any

    def bearer(self) -> str | None:
        value = self.headers.get("authorization", "")
        return value[7:].strip() if value.lower().startswith("bearer ") else None

    def admin(self) -> str:
        token = self.bearer()
        if token is None or not any(secrets.compare_digest(token, t) for t in self.core.state.admin_tokens):
            raise HttpError(401 if token is None else 403, "Unauthorized" if token is None else "Forbidden")
        return "admin"

    def items(self) -> list[Any]:
        if not isinstance(self.body, dict) or not isinstance(self.body.get("items"), list):
            raise HttpError(400, 'Bad request: expected {"items": [...]}')
        return list(self.body["items"])


def _refresh(req: _Request) -> Any:
    tokens = []
    for item in req.items():
        token = item.get("refreshToken") if isinstance(item, dict) else None
        if not isinstance(token, str):
            raise HttpError(400, "Bad request: refreshToken missing")
        tokens.append({"accessToken": req.core.access_token(token), "csrfToken": ""})
    return {"responses": tokens}


def _browse_products(req: _Request) -> Any:
    token = req.bearer()
    if token is not None:
        req.core.provider_of_token(token)
    return req.core.browse_products(req.query)


def _register_products(req: _Request) -> Any:
    token = req.bearer()
    if token is None:
        raise HttpError(401, "Unauthorized")
    provider = req.core.provider_of_token(token)
    req.core.register_products(provider, req.items())
    req.core._save()
    return {}


def _create_provider(req: _Request) -> Any:
    actor = req.admin()
    project = req.headers.get("project")
    if not project:
        raise HttpError(400, "Project not set")
    items = req.items()
    for item in items:
        if not isinstance(item, dict):
            raise HttpError(400, "Bad request")
    created = [req.core.create_provider(item, project, actor) for item in items]
    req.core._save()
    return {"responses": [{"id": record.resource_id} for record in created]}


def _find(req: _Request, resource_id: str) -> ProviderRecord:
    record = req.core.state.providers.get(resource_id)
    if record is None:
        raise HttpError(404, "Not found")
    return record


def _retrieve_provider(req: _Request) -> Any:
    req.admin()
    return _find(req, req.query.get("id", "")).as_core()


def _browse_providers(req: _Request) -> Any:
    req.admin()
    records = sorted(req.core.state.providers.values(), key=lambda p: int(p.resource_id))
    return _page([p.as_core() for p in records], req.query)


def _update_provider(req: _Request) -> Any:
    req.admin()
    for item in req.items():
        record = _find(req, str(item.get("id", "")))
        domain, port = str(item.get("domain") or ""), item.get("port")
        if not _HOSTNAME.match(domain):
            raise HttpError(400, "Domain not valid")
        if not isinstance(port, int) or not 0 < port <= 65535:
            raise HttpError(400, "Port not valid")
        record.domain, record.port, record.https = domain, port, bool(item.get("https"))
    req.core._save()
    return {}


def _renew_token(req: _Request) -> Any:
    req.admin()
    for item in req.items():
        record = _find(req, str(item.get("id", "")))
        record.public_key, record.private_key_pem = generate_keys()
        record.refresh_token = secrets.token_urlsafe(32)
    req.core._save()
    return {}


def _service_token(req: _Request) -> Any:
    """TEST-DOUBLE ONLY (not a Core API): the JWT Core would send to a provider's IM, for end-to-end checks."""
    req.admin()
    name = str((req.body or {}).get("provider", "")) if isinstance(req.body, dict) else ""
    record = req.core.provider_by_name(name)
    if record is None:
        raise HttpError(404, "Not found")
    now = int(time.time())
    claims = {"sub": "_UCloud", "role": "SERVICE", "principalType": "service", "iss": ISSUER, "aud": [AUDIENCE],
              "iat": now, "exp": now + ACCESS_TOKEN_SECONDS}
    return {"token": jwt.encode(claims, record.private_key_pem, algorithm="RS256")}


ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/auth/providers/refresh"): _refresh,
    ("GET", "/api/products/v2/browse"): _browse_products,
    ("POST", "/api/products/v2"): _register_products,
    ("POST", "/api/providers"): _create_provider,
    ("GET", "/api/providers/retrieve"): _retrieve_provider,
    ("GET", "/api/providers/browse"): _browse_providers,
    ("POST", "/api/providers/update"): _update_provider,
    ("POST", "/api/providers/renewToken"): _renew_token,
    ("POST", "/testdouble/service-token"): _service_token,
}


def _handler_for(core: CoreDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "UCloudCoreTestDouble/1"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            # never log query strings or bodies: they can hold tokens
            status = args[1] if len(args) > 1 else ""
            sys.stderr.write(f"core-double: {self.command} {urlsplit(self.path).path} {status}\n")

        def _dispatch(self) -> None:
            parts = urlsplit(self.path)
            route = ROUTES.get((self.command, parts.path.rstrip("/") or "/"))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                with core.lock:
                    core.state.requests += 1
                    if core.state.fail_next > 0:
                        core.state.fail_next -= 1
                        raise HttpError(503, "Service unavailable (injected fault)")
                    if route is None:
                        raise HttpError(404, "Not found")
                    try:
                        body = json.loads(raw) if raw else None
                    except ValueError:
                        raise HttpError(400, "Bad request: body is not JSON") from None
                    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    result = route(_Request(core, headers, query, body))
                self._send(200, result)
            except HttpError as exc:
                self._send(exc.status, {"why": exc.why, "statusCode": exc.status})

        def _send(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status, HTTPStatus(status).phrase)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = _dispatch
        do_POST = _dispatch

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="core-double", description="UCloud/Core TEST DOUBLE")
    parser.add_argument("--listen", default="127.0.0.1:8445", help="HOST:PORT")
    parser.add_argument("--admin-token-file", action="append", default=[], help="file holding an admin token")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--state", help="JSON file to keep providers and products in (0600)")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    tokens = {Path(f).read_text().strip() for f in args.admin_token_file}
    core = CoreDouble(host or "127.0.0.1", int(port), tokens, args.tls_cert, args.tls_key, args.state)
    print(f"UCloud/Core test double listening on {core.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        core.server.serve_forever()
    return 0


def run() -> None:
    """Entry point of the packaged zipapp (its generated __main__ ignores return values)."""
    sys.exit(main())


if __name__ == "__main__":
    run()
