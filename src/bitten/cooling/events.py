"""Redfish EventService server-sent events: a CDU that offers ServerSentEventUri tells the agent about an alarm
the moment it happens, so the agent polls that CDU at once instead of at its next tick. Events only wake the
poll: the poll's reading stays the one source of truth for alarms (an event without state is not acted on).

The stream goes to the CDU's own origin only (a ServerSentEventUri elsewhere is refused: polling only), with the
CDU's session token (``auth: session``, logged in again when the stream is refused with 401) or account
(``basic``); no redirect is followed and no event may grow beyond ``MAX_EVENT_BYTES``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any

import requests

from bitten.cooling.errors import DeviceError
from bitten.cooling.redfish import RedfishCdu
from bitten.core.retry import Backoff

log = logging.getLogger("bitten.cooling.events")
#: an event (or a line) longer than this is dropped and the stream reconnected
MAX_EVENT_BYTES = 1024 * 1024


def parse_stream(lines: Iterable[bytes | str]) -> Iterator[Any]:
    """Yield the JSON payload of each event in an SSE line stream ("data:" lines up to a blank line)."""
    data: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        line = line.rstrip("\r")
        if line == "":
            if data:
                try:
                    yield json.loads("\n".join(data))
                except ValueError:
                    yield {"unparsed": "\n".join(data)[:1000]}
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


def lines(read: Callable[[], bytes], limit: int = MAX_EVENT_BYTES) -> Iterator[bytes]:
    """Lines of a byte stream as they arrive (``read`` returns what is there, b"" at the end), each at most
    ``limit`` bytes (a longer one raises ValueError: the stream is dropped)."""
    buffer = b""
    while True:
        chunk = read()
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield line
        if len(buffer) > limit:
            raise ValueError(f"an event stream line longer than {limit} bytes")


class EventListener(threading.Thread):
    """Follows one CDU's SSE stream; reconnects with backoff; calls ``on_event(cdu_name, payload)``."""

    def __init__(self, cdu: RedfishCdu, on_event: Callable[[str, dict[str, Any]], None], stop: threading.Event,
                 max_backoff: float = 60.0) -> None:
        super().__init__(name=f"events-{cdu.name}", daemon=True)
        self.cdu = cdu
        self.on_event = on_event
        self.stop_event = stop
        self.max_backoff = max_backoff
        self.connected = threading.Event()
        self.uri: str | None = None
        self.refused: str | None = None

    def _session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        session.max_redirects = 0
        session.headers.update({"Accept": "text/event-stream", "OData-Version": "4.0"})
        return session

    def run(self) -> None:
        reconnect = Backoff(initial=1.0, maximum=self.max_backoff, jitter=0.2)
        failures = 0
        session = self._session()
        while not self.stop_event.is_set():
            try:
                if self.uri is None:
                    try:
                        self.uri = self.cdu.event_stream_uri()
                    except DeviceError as exc:  # a stream on another origin: never followed
                        self.refused = str(exc)
                        log.warning("%s: %s; polling only", self.cdu.name, exc)
                        return
                    if self.uri is None:
                        log.info("%s offers no server-sent events: polling only", self.cdu.name)
                        return
                headers, basic = self.cdu.connection.auth_for_stream()
                url = self.cdu.base + self.uri
                with session.get(url, stream=True, timeout=(self.cdu.timeout, 120), verify=self.cdu.verify or True,
                                 headers=headers, auth=basic, allow_redirects=False) as resp:
                    if resp.status_code == 401:
                        self.cdu.connection.relogin()  # the session expired: a new one for the next attempt
                        raise requests.RequestException("HTTP 401: logged in again")
                    if resp.status_code != 200:
                        raise requests.RequestException(f"HTTP {resp.status_code}")
                    self.connected.set()
                    failures = 0
                    raw: Any = resp.raw
                    for payload in parse_stream(lines(partial(raw.read1, 65536))):
                        if self.stop_event.is_set():
                            return
                        self.on_event(self.cdu.name, payload if isinstance(payload, dict) else {"payload": payload})
            except Exception as exc:
                log.debug("%s event stream: %s", self.cdu.name, exc)
            finally:
                self.connected.clear()
            failures += 1
            if self.stop_event.wait(reconnect.delay(failures)):
                return
