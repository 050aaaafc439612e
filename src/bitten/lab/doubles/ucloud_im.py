"""UCloud Integration Module TEST DOUBLE: ``/opt/ucloud/ucloud`` where the real IM binary cannot be obtained.

This is not the UCloud IM. It does what the IM does at start-up that the rest of the site depends on, with the
same inputs and the same failures, so that the ucloud_im role, the lab and the registration check exercise real
paths:

1. parses /etc/ucloud (server.yml, secrets.yml, config.yml, ucloud_key.pub) with the IM's rules
   (bitten.ucloud.im.parser, file checks included) and exits 1 on any error the IM stops on;
2. connects to its PostgreSQL database with server.yml's credentials;
3. exchanges the refresh token for an access token at UCloud/Core (``POST /auth/providers/refresh``), verifies the
   token's signature with ucloud_key.pub (a key that does not match would make every call from Core fail);
4. registers its products (``GET /api/products/v2/browse`` then ``POST /api/products/v2`` per category, refusing
   category changes as the IM does);
5. starts envoy (``<envoy.executable> --config-path <envoy.directory>/config.yaml``), serves the IM server on
   42000 (calls from Core under ``/ucloud/<provider>/``, authenticated with JWTs signed by the provider's key),
   metrics on 7867 and the IPC socket ``<ipc.directory>/ucloud.sock``.

Needs python3 with PyYAML, PyJWT, cryptography and psycopg2 (Debian: python3-yaml python3-jwt python3-cryptography
python3-psycopg2), all declared by the double's .deb. ``ucloud version`` prints what it is.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bitten.ucloud.im.parser import ParsedIM, parse_directory
from bitten.ucloud.im.products import products_of

VERSION = "UCloud/IM test double (bitten)"
SERVER_PORT = 42000
METRICS_PORT = 7867
log = logging.getLogger("ucloud-im-double")


class Fatal(Exception):
    """The IM would stop here (exit 1)."""


def host_url(host: dict[str, Any]) -> str:
    """The IM's HostInfo.ToURL: scheme from the port when not given, default ports left out."""
    port, scheme = int(host.get("port") or 0), str(host.get("scheme") or "")
    if scheme not in ("http", "https"):
        scheme = "https" if port in (443, 8443) else "http"
    if port == 0:
        port = 443 if scheme == "https" else 80
    default = (scheme, port) in (("http", 80), ("https", 443))
    return f"{scheme}://{host['address']}" if default else f"{scheme}://{host['address']}:{port}"


def public_key_pem(der: bytes) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_der_public_key(der).public_bytes(serialization.Encoding.PEM,
                                                                serialization.PublicFormat.SubjectPublicKeyInfo)


# --- start-up steps --------------------------------------------------------------------------------------------


def check_config(config_dir: Path) -> ParsedIM:
    parsed = parse_directory(config_dir, check_files=True)
    for issue in parsed.issues:
        (log.error if issue.im_rule else log.warning)("%s", issue)
    if parsed.errors:
        raise Fatal(f"the configuration in {config_dir} is invalid ({len(parsed.errors)} error(s) above)")
    return parsed


def check_database(parsed: ParsedIM) -> None:
    server = parsed.server
    assert server is not None
    try:
        import psycopg2
    except ImportError:
        raise Fatal("psycopg2 is not installed (python3-psycopg2)") from None
    try:
        connection = psycopg2.connect(host=server.db_host, port=server.db_port, user=server.db_user,
                                      password=server.db_password, dbname=server.db_name,
                                      sslmode="require" if server.db_ssl else "prefer", connect_timeout=10)
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        connection.close()
    except psycopg2.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Fatal(f"Failed to connect to the database {server.db_name} at {server.db_host}:{server.db_port} as "
                    f"{server.db_user}: {first}") from None
    log.info("database %s at %s:%s: connected", server.db_name, server.db_host, server.db_port)


class Core:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.context = ssl.create_default_context()

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             query: dict[str, Any] | None = None, attempts: int = 5) -> Any:
        url = self.url + path + (f"?{urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        delay = 1.0
        for attempt in range(1, attempts + 1):
            request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
            try:
                with urllib.request.urlopen(request, timeout=self.timeout, context=self.context) as response:  # noqa: S310
                    raw = response.read()
                    return json.loads(raw) if raw else {}
            except urllib.error.HTTPError as exc:
                why = _why(exc)
                if exc.code >= 500 and attempt < attempts:
                    log.warning("%s %s: Core answered %s, retrying in %.0f s", method, path, exc.code, delay)
                else:
                    raise Fatal(f"{method} {path}: UCloud/Core answered {exc.code} {why}".rstrip()) from None
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                if attempt == attempts:
                    raise Fatal(f"UCloud/Core at {self.url} is unreachable: {reason}") from None
                log.warning("UCloud/Core at %s unreachable (%s), retrying in %.0f s", self.url, reason, delay)
            time.sleep(delay)
            delay = min(delay * 2, 30)
        raise Fatal("unreachable")  # pragma: no cover


def _why(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read()).get("why", ""))
    except (ValueError, AttributeError, OSError):
        return ""


def access_token(core: Core, parsed: ParsedIM) -> str:
    import jwt

    assert parsed.server is not None and parsed.public_key_der is not None
    try:
        answer = core.call("POST", "/auth/providers/refresh",
                           {"items": [{"refreshToken": parsed.server.refresh_token}]})
    except Fatal as exc:
        if " 401" in str(exc) or " 403" in str(exc):
            raise Fatal("UCloud/Core rejected the refresh token in server.yml (401): it is not the token Core "
                        f"issued for provider {parsed.provider_id}") from None
        raise
    token = str(answer["responses"][0]["accessToken"])
    try:
        claims = jwt.decode(token, public_key_pem(parsed.public_key_der), algorithms=["RS256"],
                            options={"verify_aud": False})
    except jwt.InvalidSignatureError:
        raise Fatal("ucloud_key.pub does not match the key UCloud/Core signs this provider's tokens with: calls from "
                    "Core would be refused; install the public key Core issued with the refresh token") from None
    except jwt.PyJWTError as exc:
        raise Fatal(f"the access token from UCloud/Core is not valid: {exc}") from None
    if claims.get("sub") != f"#P_{parsed.provider_id}":
        raise Fatal(f"the refresh token belongs to {claims.get('sub')!r}, not to provider {parsed.provider_id!r} "
                    "(provider.id in config.yml)")
    log.info("UCloud/Core at %s: authenticated as provider %s", core.url, parsed.provider_id)
    return token


def register_products(core: Core, token: str, parsed: ParsedIM) -> list[dict[str, Any]]:
    """As the IM's ProductsRegister: browse what Core has, refuse category changes, create per category."""
    existing: dict[str, dict[str, Any]] = {}
    query: dict[str, Any] = {"itemsPerPage": 250, "filterProvider": parsed.provider_id}
    while True:
        page = core.call("GET", "/api/products/v2/browse", token=token, query=query)
        for product in page.get("items") or []:
            existing[product["category"]["name"]] = product["category"]
        if not page.get("next"):
            break
        query["next"] = page["next"]
    products = products_of(parsed)
    by_category: dict[str, list[dict[str, Any]]] = {}
    for product in products:
        by_category.setdefault(product["category"]["name"], []).append(product)
    for name, items in by_category.items():
        old, new = existing.get(name), items[0]["category"]
        if old is not None:
            for key, what in (("accountingUnit", "accounting unit"), ("accountingFrequency", "accounting frequency"),
                              ("freeToUse", "freeToUse flag")):
                if old.get(key) != new.get(key):
                    raise Fatal(f"Product with category {name} has changed {what} which is not allowed. Please "
                                "create a new category instead.")
        core.call("POST", "/api/products/v2", {"items": items}, token=token)
    log.info("registered %d product(s) in %d categories on UCloud/Core", len(products), len(by_category))
    return products


# --- what runs after start-up ----------------------------------------------------------------------------------


class ImState:
    def __init__(self, parsed: ParsedIM, products: list[dict[str, Any]]) -> None:
        self.parsed = parsed
        self.products = products
        self.calls = 0
        self.rejected = 0


def _server_handler(state: ImState) -> type[BaseHTTPRequestHandler]:
    import jwt

    assert state.parsed.public_key_der is not None
    key = public_key_pem(state.parsed.public_key_der)
    prefix = f"/ucloud/{state.parsed.provider_id}/"

    class Handler(BaseHTTPRequestHandler):
        server_version = "UCloudIMTestDouble/1"

        def log_message(self, format: str, *args: Any) -> None:
            log.info("im-server: %s %s", self.command, self.path.split("?", 1)[0])

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if not self.path.startswith(prefix):
                return self._send(404, {"why": "Not found", "statusCode": 404})
            auth = self.headers.get("Authorization", "")
            try:
                claims = jwt.decode(auth[7:] if auth.startswith("Bearer ") else "", key, algorithms=["RS256"],
                                    options={"verify_aud": False})
                if claims.get("role") != "SERVICE" or claims.get("sub") != "_UCloud":
                    raise jwt.InvalidTokenError("not UCloud/Core")
            except jwt.PyJWTError:
                state.rejected += 1
                return self._send(401, {"why": "Unauthorized", "statusCode": 401})
            state.calls += 1
            return self._send(200, {"provider": state.parsed.provider_id, "path": self.path, "testDouble": True,
                                    "products": len(state.products)})

        def _send(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = _any
        do_POST = _any
        do_PUT = _any
        do_DELETE = _any

    return Handler


def _metrics_handler(state: ImState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = (
                "# HELP ucloud_im_double_up 1 while the IM test double runs\n# TYPE ucloud_im_double_up gauge\n"
                "ucloud_im_double_up 1\n"
                "# HELP ucloud_im_double_products_registered products registered on UCloud/Core at start-up\n"
                "# TYPE ucloud_im_double_products_registered gauge\n"
                f"ucloud_im_double_products_registered {len(state.products)}\n"
                "# HELP ucloud_im_double_calls_total authenticated calls from UCloud/Core\n"
                "# TYPE ucloud_im_double_calls_total counter\n"
                f"ucloud_im_double_calls_total {state.calls}\n"
                f"ucloud_im_double_calls_rejected_total {state.rejected}\n"
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


class _IpcHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.rfile.readline()
        self.wfile.write(b'{"ok": true, "testDouble": true}\n')


def start_envoy(parsed: ParsedIM, gateway_port: int) -> subprocess.Popen[bytes] | None:
    envoy = parsed.envoy
    if envoy.get("managedExternally"):
        return None
    directory = Path(str(envoy["directory"]))
    config = directory / "config.yaml"
    config.write_text(
        "# written by the UCloud IM test double; the real IM configures envoy over xDS instead\n"
        f"listen: {{address: 0.0.0.0, port: {gateway_port}}}\n"
        f"upstream: {{address: 127.0.0.1, port: {SERVER_PORT}}}\n")
    log.info("starting envoy %s on port %d", envoy["executable"], gateway_port)
    return subprocess.Popen([str(envoy["executable"]), "--config-path", str(config)])


def serve(parsed: ParsedIM, products: list[dict[str, Any]]) -> int:
    state = ImState(parsed, products)
    servers: list[socketserver.BaseServer] = [
        ThreadingHTTPServer(("0.0.0.0", SERVER_PORT), _server_handler(state)),  # noqa: S104 - as the IM
        ThreadingHTTPServer(("0.0.0.0", METRICS_PORT), _metrics_handler(state)),  # noqa: S104
    ]
    ipc_dir = None
    socket_path = _ipc_socket_path(parsed)
    if socket_path is not None:
        socket_path.unlink(missing_ok=True)
        ipc = socketserver.ThreadingUnixStreamServer(str(socket_path), _IpcHandler)
        # as the IM's socket: every user's IM instance talks to the server through it
        os.chmod(socket_path, 0o666)  # noqa: S103
        servers.append(ipc)
        ipc_dir = socket_path.parent
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    gateway = int(parsed.hosts.get("self", {}).get("port") or 8889)
    envoy = start_envoy(parsed, gateway)
    log.info("UCloud/IM test double running: server :%d, metrics :%d, gateway (envoy) :%d, ipc %s",
             SERVER_PORT, METRICS_PORT, gateway, ipc_dir)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.is_set():
        if envoy is not None and envoy.poll() is not None:
            log.error("envoy exited with %s", envoy.returncode)
            return 1
        stop.wait(1)
    for server in servers:
        server.shutdown()
    if envoy is not None:
        envoy.terminate()
        envoy.wait(10)
    return 0


def _ipc_socket_path(parsed: ParsedIM) -> Path | None:
    directory = parsed.ipc_directory
    return Path(directory) / "ucloud.sock" if directory else None


def run_server(config_dir: Path) -> int:
    try:
        parsed = check_config(config_dir)
        check_database(parsed)
        core = Core(host_url(parsed.hosts["ucloud"]))
        token = access_token(core, parsed)
        products = register_products(core, token, parsed)
    except Fatal as exc:
        log.error("%s", exc)
        return 1
    return serve(parsed, products)


def _setup_logging(parsed_logs: str | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if parsed_logs and os.path.isdir(parsed_logs) and os.access(parsed_logs, os.W_OK):
        handlers.append(logging.FileHandler(os.path.join(parsed_logs, "server.log")))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers,
                        force=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ucloud", description="UCloud Integration Module TEST DOUBLE")
    parser.add_argument("command", nargs="?", default="server", choices=["server", "version", "check-config"])
    parser.add_argument("--config-dir", default=os.environ.get("UCLOUD_CONFIG_DIR", "/etc/ucloud"))
    args = parser.parse_args(argv)
    if args.command == "version":
        print(VERSION)
        return 0
    _setup_logging("/var/log/ucloud" if args.command == "server" else None)
    if args.command == "check-config":
        try:
            check_config(Path(args.config_dir))
        except Fatal as exc:
            log.error("%s", exc)
            return 1
        print("configuration OK")
        return 0
    return run_server(Path(args.config_dir))


def run() -> None:
    """Entry point of the packaged zipapp (its generated __main__ ignores return values)."""
    sys.exit(main())


if __name__ == "__main__":
    run()
