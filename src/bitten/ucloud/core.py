"""A client for UCloud/Core: providers (admin), provider token refresh, and products.

Paths and bodies follow Core's RPC conventions (provider-integration/shared/pkg/rpc): ``create`` is a POST of
``{"items": [...]}`` to the base path, ``retrieve``/``browse`` are GETs with query parameters, ``update``-style calls
are POSTs to ``<base>/<operation>``; errors carry ``{"why", "statusCode"}``.

TLS is verified; a private CA is given with ``ca_file``. Connection failures and 5xx answers are retried with
exponential backoff (bitten.core.retry, honouring Retry-After), then reported as CoreUnreachable: reads and calls
that set a value (refresh, update) always, a call that creates something (a provider, a token, products) only when
it surely never reached Core, so that a lost answer never makes two. Tokens are never logged or put in messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from bitten.core.retry import Backoff, call
from bitten.core.transport import never_sent, retry_after

#: answers that say "try again" (a gateway, an overloaded or restarting Core)
TRANSIENT = (500, 502, 503, 504)


class CoreError(Exception):
    """Core answered with an error (or not at all)."""

    def __init__(self, message: str, status: int | None = None, why: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.why = why


class CoreUnreachable(CoreError):
    """No answer from Core (connection refused, timeout, TLS failure, or 5xx after every retry)."""


class CoreAuthError(CoreError):
    """Core refused the credentials (401/403)."""


class CoreNotFound(CoreError):
    pass


class CoreConflict(CoreError):
    pass


@dataclass(frozen=True)
class ProviderSpec:
    """What a provider is on Core: its name, and where Core reaches its Integration Module."""

    name: str
    domain: str
    port: int = 443
    https: bool = True

    def as_core(self, resource_id: str | None = None) -> dict[str, Any]:
        spec: dict[str, Any] = {"id": resource_id or self.name, "domain": self.domain, "https": self.https,
                                "port": self.port}
        return spec


@dataclass(frozen=True)
class Provider:
    resource_id: str
    spec: ProviderSpec
    refresh_token: str
    public_key: str

    @classmethod
    def from_core(cls, data: dict[str, Any]) -> Provider:
        spec = data.get("specification") or {}
        return cls(resource_id=str(data["id"]),
                   spec=ProviderSpec(name=str(spec.get("id", "")), domain=str(spec.get("domain", "")),
                                     port=int(spec.get("port", 443)), https=bool(spec.get("https", True))),
                   refresh_token=str(data.get("refreshToken", "")), public_key=str(data.get("publicKey", "")))


class CoreClient:
    def __init__(self, url: str, *, ca_file: str | None = None, timeout: float = 10.0, retries: int = 4,
                 backoff: float = 0.5) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        # an explicit CA file is used as given (passed per request: requests lets REQUESTS_CA_BUNDLE override a
        # session-level setting); otherwise the system store, or REQUESTS_CA_BUNDLE when set
        self.verify: str | bool = ca_file if ca_file else True
        self.retry = Backoff(attempts=retries + 1, initial=backoff, maximum=max(backoff * 16, backoff))

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> CoreClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport --------------------------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, token: str | None = None, body: Any = None,
              params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
              idempotent: bool | None = None) -> Any:
        all_headers = {"Accept": "application/json", **(headers or {})}
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        url = f"{self.url}{path}"
        repeatable = method in ("GET", "HEAD", "PUT", "DELETE") if idempotent is None else idempotent

        def once() -> requests.Response:
            answer = self.session.request(method, url, json=body, params=params, headers=all_headers,
                                          timeout=self.timeout, verify=self.verify)
            if answer.status_code in TRANSIENT:
                raise _Transient(answer)
            return answer

        def retry_if(error: BaseException) -> bool:
            if isinstance(error, requests.exceptions.SSLError):
                return False
            if isinstance(error, _Transient):
                return repeatable
            return isinstance(error, requests.exceptions.RequestException) and (repeatable or never_sent(error))

        def delay_for(error: BaseException) -> float | None:
            return retry_after(error.response.headers) if isinstance(error, _Transient) else None

        try:
            response = call(once, self.retry, retry_if, delay_for=delay_for)
        except _Transient as exc:
            response = exc.response
        except requests.exceptions.SSLError as exc:
            raise CoreUnreachable(f"TLS to UCloud/Core at {self.url} failed ({_reason(exc)}); is the CA right? "
                                  "(--ca-file / BITTEN_UCLOUD_CA_FILE)") from None
        except requests.exceptions.RequestException as exc:
            raise CoreUnreachable(f"UCloud/Core at {self.url} is unreachable ({_reason(exc)})") from None
        if response.status_code < 400:
            try:
                return response.json() if response.content else {}
            except ValueError:
                raise CoreError(f"{method} {path}: Core answered {response.status_code} with a body that is not "
                                "JSON", response.status_code) from None
        why = _why(response)
        message = f"{method} {path}: UCloud/Core answered {response.status_code}" + (f" ({why})" if why else "")
        if response.status_code in (401, 403):
            raise CoreAuthError(message, response.status_code, why)
        if response.status_code == 404:
            raise CoreNotFound(message, 404, why)
        if response.status_code == 409:
            raise CoreConflict(message, 409, why)
        if response.status_code >= 500:
            tries = "after retries" if repeatable else "(not repeated: Core may have acted on it)"
            raise CoreUnreachable(f"{message} {tries}", response.status_code, why)
        raise CoreError(message, response.status_code, why)

    # --- provider side ----------------------------------------------------------------------------------------
    def refresh(self, refresh_token: str) -> str:
        """An access token for the provider that owns ``refresh_token``."""
        try:
            data = self._call("POST", "/auth/providers/refresh", body={"items": [{"refreshToken": refresh_token}]},
                              idempotent=True)
        except CoreAuthError as exc:
            raise CoreAuthError(f"UCloud/Core at {self.url} rejected the provider refresh token: is it the one "
                                "Core issued for this provider?", exc.status, exc.why) from None
        try:
            return str(data["responses"][0]["accessToken"])
        except (KeyError, IndexError, TypeError):
            raise CoreError("POST /auth/providers/refresh: no access token in Core's answer") from None

    def browse_products(self, provider: str, *, token: str | None = None, category: str | None = None,
                        per_page: int = 250) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {"itemsPerPage": per_page, "filterProvider": provider}
        if category:
            params["filterCategory"] = category
        while True:
            page = self._call("GET", "/api/products/v2/browse", token=token, params=params)
            items.extend(page.get("items") or [])
            following = page.get("next")
            if not following:
                return items
            params["next"] = following

    def register_products(self, products: list[dict[str, Any]], token: str) -> None:
        self._call("POST", "/api/products/v2", token=token, body={"items": products})

    # --- admin side -------------------------------------------------------------------------------------------
    def create_provider(self, spec: ProviderSpec, admin_token: str, project: str) -> str:
        data = self._call("POST", "/api/providers", token=admin_token, body={"items": [spec.as_core()]},
                          headers={"Project": project})
        return str(data["responses"][0]["id"])

    def retrieve_provider(self, resource_id: str, admin_token: str) -> Provider:
        return Provider.from_core(self._call("GET", "/api/providers/retrieve", token=admin_token,
                                             params={"id": resource_id}))

    def browse_providers(self, admin_token: str) -> list[Provider]:
        out: list[Provider] = []
        params: dict[str, Any] = {"itemsPerPage": 250}
        while True:
            page = self._call("GET", "/api/providers/browse", token=admin_token, params=params)
            out.extend(Provider.from_core(p) for p in page.get("items") or [])
            if not page.get("next"):
                return out
            params["next"] = page["next"]

    def find_provider(self, name: str, admin_token: str) -> Provider | None:
        return next((p for p in self.browse_providers(admin_token) if p.spec.name == name), None)

    def update_provider(self, resource_id: str, spec: ProviderSpec, admin_token: str) -> None:
        self._call("POST", "/api/providers/update", token=admin_token, body={"items": [spec.as_core(resource_id)]},
                   idempotent=True)

    def renew_token(self, resource_id: str, admin_token: str) -> None:
        self._call("POST", "/api/providers/renewToken", token=admin_token, body={"items": [{"id": resource_id}]})


class _Transient(Exception):
    def __init__(self, response: requests.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _why(response: requests.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return ""
    return str(data.get("why") or "") if isinstance(data, dict) else ""


def _reason(exc: Exception) -> str:
    text = str(exc.args[0] if exc.args else exc)
    # urllib3 wraps the cause in a long repr; keep its last part
    return text.rsplit(": ", 1)[-1].rstrip(")'\"") if len(text) > 160 else text
