"""Redfish EventService server-sent events: a CDU that offers ServerSentEventUri tells the agent about an alarm
the moment it happens, so the agent polls that CDU at once instead of at its next tick. Events only wake the
poll: the poll's reading stays the one source of truth for alarms (an event without state is not acted on)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import requests

from bitten.cooling.redfish import RedfishCdu
from bitten.core.retry import Backoff

log = logging.getLogger("bitten.cooling.events")


def parse_stream(lines: Any) -> Any:
    """Yield the JSON payload of each event in an SSE line stream ("data:" lines up to a blank line)."""
    data: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if line == "":
            if data:
                try:
                    yield json.loads("\n".join(data))
                except ValueError:
                    yield {"unparsed": "\n".join(data)}
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


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

    def run(self) -> None:
        reconnect = Backoff(initial=1.0, maximum=self.max_backoff, jitter=0.2)
        failures = 0
        session = requests.Session()
        session.headers.update(dict(self.cdu.session.headers))
        session.auth = self.cdu.session.auth
        while not self.stop_event.is_set():
            try:
                self.uri = self.uri or self.cdu.event_stream_uri()
                if self.uri is None:
                    log.info("%s offers no server-sent events: polling only", self.cdu.name)
                    return
                url = self.uri if self.uri.startswith("http") else self.cdu.base + self.uri
                with session.get(url, stream=True, timeout=(self.cdu.timeout, 120), verify=self.cdu.verify,
                                 headers={"Accept": "text/event-stream"}) as resp:
                    if resp.status_code != 200:
                        raise requests.RequestException(f"HTTP {resp.status_code}")
                    self.connected.set()
                    failures = 0
                    for payload in parse_stream(resp.iter_lines(chunk_size=1, decode_unicode=False)):
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
