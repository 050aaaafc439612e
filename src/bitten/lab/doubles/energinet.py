"""Energi Data Service TEST DOUBLE: serves signal traces in the API's JSON shape where the real service is
unreachable (tests, the lab gateway, Molecule).

This is not Energinet's service. It answers ``GET /dataset/<Name>`` with ``start``, ``end`` (Danish local time,
``yyyy-MM-dd[THH:mm]``, end exclusive), ``filter`` (``{"PriceArea": [...]}``), ``sort`` (``<field> ASC|DESC``),
``limit`` and ``offset``, as ``{"total": N, "limit": L, "dataset": "<Name>", "records": [...]}``; an unknown
dataset is a 400 with an error body, as the real service answers.

Records come from a trace file (``{dataset: [records]}``, what bitten.energy.traces writes) or a generated quiet
grid (a daily CO2 and price curve). Standard library and bitten.energy.eds only: it runs without the project's
venv (Molecule ships the few files it needs).
``replay``: the trace's first period is moved to the server's start (rounded to the hour), so a recorded day plays
as if it were today. For drills and fault tests, ``POST /testdouble/fault`` with ``{"mode": ...}``:
ok | down (503) | garbage (not JSON) | late (realised values stop an hour ago) | past_forecast (the forecast ends
before now) | slow (answers after ``delay_s``); and ``POST /testdouble/peak`` with ``{"before_s", "peak_s",
"after_s", "high", "low"}`` replaces the trace from now on with a grid peak.

Run: ``python -m bitten.lab.doubles.energinet --listen 127.0.0.1:8447 [--trace FILE] [--replay]
[--tls-cert C --tls-key K]``
"""

from __future__ import annotations

import argparse
import json
import math
import ssl
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bitten.energy.eds import DANISH_TIME, DATASETS, parse_danish, parse_utc, records

FAULTS = ("ok", "down", "garbage", "late", "past_forecast", "slow")


class Store:
    def __init__(self, records: dict[str, list[dict[str, Any]]]) -> None:
        self.lock = threading.Lock()
        self.records = records
        self.fault = "ok"
        self.delay_s = 0.0
        self.requests = 0

    def shifted(self, offset_s: float) -> None:
        """Move every record by offset_s (replay a recorded period as now)."""
        for name, rows in self.records.items():
            spec = DATASETS.get(name)
            if spec is None:
                continue
            for row in rows:
                t = parse_utc(row.get(spec.time_field))
                if t is None:
                    continue
                t += offset_s
                row[spec.time_field] = _utc(t)
                dk_field = spec.time_field.replace("UTC", "DK")
                if dk_field in row:
                    row[dk_field] = datetime.fromtimestamp(t, DANISH_TIME).strftime("%Y-%m-%dT%H:%M:%S")


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def quiet(t: float) -> float:
    """A calm day's CO2 (g/kWh): higher in the evening, never near a peak."""
    return 110.0 + 30.0 * math.sin((t % 86400) / 86400 * 2 * math.pi)


def quiet_price(t: float) -> float:
    return 550.0 + 150.0 * math.sin((t % 86400) / 86400 * 2 * math.pi)


def peak_records(now: float, before_s: float, peak_s: float, after_s: float, low: float, high: float) -> dict[
        str, list[dict[str, Any]]]:
    """Quiet until now + before_s, ``high`` CO2 (and a dear price) for peak_s, ``low`` again for after_s."""
    start, end = now + before_s, now + before_s + peak_s

    def co2(t: float) -> float:
        return high if start <= t < end else low

    def price(t: float) -> float:
        return 2400.0 if start <= t < end else 500.0

    return records(now - 6 * 3600, end + after_s, co2, price)


def make_handler(store: Store) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "EnergiDataServiceDouble/1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, code: int, doc: Any) -> None:
            self._send(code, json.dumps(doc).encode())

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            with store.lock:
                store.requests += 1
                fault, delay = store.fault, store.delay_s
            if fault == "slow":
                time.sleep(delay)
            if fault == "down":
                self._json(503, {"error": "Service Unavailable"})
                return
            if fault == "garbage":
                self._send(200, b"<html>maintenance</html>", "text/html")
                return
            if not url.path.startswith("/dataset/"):
                self._json(404, {"error": "Not Found"})
                return
            name = url.path.removeprefix("/dataset/")
            spec = DATASETS.get(name)
            if spec is None or name not in store.records:
                self._json(400, {"error": f"Dataset {name} does not exist"})
                return
            q = {k: v[-1] for k, v in parse_qs(url.query).items()}
            try:
                start = parse_danish(q["start"]) if "start" in q else -math.inf
                end = parse_danish(q["end"]) if "end" in q else math.inf
                areas = json.loads(q["filter"]).get("PriceArea") if "filter" in q else None
                limit = int(q.get("limit", "100"))
                offset = int(q.get("offset", "0"))
            except (ValueError, AttributeError) as exc:
                self._json(400, {"error": str(exc)})
                return
            now = time.time()
            with store.lock:
                rows = list(store.records[name])
            selected = []
            for row in rows:
                t = parse_utc(row.get(spec.time_field))
                if t is None or not start <= t < end:
                    continue
                if areas is not None and row.get("PriceArea") not in areas:
                    continue
                if fault == "late" and name == "CO2Emis" and t > now - 3600:
                    continue
                if fault == "past_forecast" and name == "CO2EmisProg" and t > now - 1800:
                    continue
                if name == "CO2Emis" and t > now:
                    continue  # realised values exist only for the past
                selected.append(row)
            sort = q.get("sort", f"{spec.time_field} ASC").split()
            selected.sort(key=lambda r: str(r.get(sort[0], "")), reverse=len(sort) > 1 and sort[1].upper() == "DESC")
            page = selected[offset:] if limit == 0 else selected[offset:offset + limit]
            self._json(200, {"total": len(selected), "limit": limit, "dataset": name, "records": page})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                self._json(400, {"error": "not JSON"})
                return
            if self.path == "/testdouble/fault":
                mode = body.get("mode")
                if mode not in FAULTS:
                    self._json(400, {"error": f"mode must be one of {', '.join(FAULTS)}"})
                    return
                with store.lock:
                    store.fault, store.delay_s = mode, float(body.get("delay_s", 0))
                self._json(200, {"mode": mode})
            elif self.path == "/testdouble/peak":
                # the records are 5-minute ones: the peak begins with the record that holds now + before_s and
                # its last record holds now + before_s + peak_s, so it lasts at least peak_s
                now = time.time()
                start = now - now % 300
                begin = now + float(body.get("before_s", 300))
                begin -= begin % 300
                end = now + float(body.get("before_s", 300)) + float(body.get("peak_s", 900))
                new = peak_records(start, begin - start, end - begin, float(body.get("after_s", 86400)),
                                   float(body.get("low", 120)), float(body.get("high", 420)))
                with store.lock:
                    store.records = new
                self._json(200, {"peak_start": begin, "peak_end": end})
            else:
                self._json(404, {"error": "Not Found"})

    return Handler


class SignalServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    store: Store

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (a timeout test) is not an error of the double."""


def serve(records: dict[str, list[dict[str, Any]]], host: str = "127.0.0.1", port: int = 0, *,
          certfile: str | None = None, keyfile: str | None = None) -> SignalServer:
    """A bound server (call serve_forever, or use in_thread); ``port`` 0 picks a free one."""
    store = Store(records)
    server = SignalServer((host, port), make_handler(store))
    server.store = store
    if certfile:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


def in_thread(server: SignalServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                              name="energinet-double")
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:8447")
    parser.add_argument("--trace", type=Path, help="records per dataset (JSON); default: a generated trace")
    parser.add_argument("--replay", action="store_true", help="move the trace's start to now")
    parser.add_argument("--price-area", default="DK1")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args(argv)
    now = time.time()
    hour = now - now % 3600
    if args.trace:
        data = json.loads(args.trace.read_text())
    else:
        data = records(hour - 2 * 86400, hour + 3 * 86400, quiet, quiet_price, args.price_area)
    store_offset = 0.0
    if args.replay and args.trace:
        first = min((parse_utc(r.get(DATASETS[n].time_field)) or math.inf) for n, rows in data.items()
                    if n in DATASETS for r in rows)
        store_offset = hour - first
    host, _, port = args.listen.rpartition(":")
    server = serve(data, host or "127.0.0.1", int(port), certfile=args.tls_cert, keyfile=args.tls_key)
    if store_offset:
        server.store.shifted(store_offset)
    print(f"Energi Data Service TEST DOUBLE on {args.listen}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
