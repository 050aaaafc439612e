"""What bitten's HTTP clients (Redfish, UCloud/Core) need to know about a failed request, on top of requests.

``never_sent(error)``: the request certainly did not reach the server (connection refused, name not resolved, a
connect timeout), so even a non-idempotent request may be repeated. ``retry_after(response)``: the delay a 503 or
429 asks for, in seconds (a number; HTTP dates are not honoured and fall back to the backoff).
"""

from __future__ import annotations

from collections.abc import Mapping

import requests
import urllib3


def never_sent(error: BaseException | None) -> bool:
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(error, requests.exceptions.ConnectionError) and error.args:
        reason = getattr(error.args[0], "reason", None)
        return isinstance(reason, urllib3.exceptions.NewConnectionError)
    return False


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    return float(value) if value and value.strip().isdigit() else None
