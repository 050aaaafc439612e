"""envoy TEST DOUBLE: the gateway the IM starts on its port 8889, forwarding to the IM server.

Not envoy. The real IM runs envoy and configures it over xDS; this double reads the small YAML file the IM test
double writes (``listen`` and ``upstream`` address/port) and forwards every HTTP request to the upstream unchanged,
answering 502 when the upstream does not answer. Standard library and PyYAML only.
"""

from __future__ import annotations

import argparse
import http.client
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import yaml

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade"}


def handler_for(upstream: tuple[str, int]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "envoy-test-double"

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"envoy-double: {self.command} {self.path.split('?', 1)[0]}\n")

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            connection = http.client.HTTPConnection(*upstream, timeout=30)
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except OSError:
                data = b'{"why": "upstream unavailable", "statusCode": 502}'
                self.send_response(502)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            finally:
                connection.close()
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = _forward
        do_POST = _forward
        do_PUT = _forward
        do_DELETE = _forward

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="envoy", description="envoy TEST DOUBLE for the UCloud IM test double")
    parser.add_argument("--config-path", required=True)
    args = parser.parse_args(argv)
    with open(args.config_path, encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    listen, upstream = config["listen"], config["upstream"]
    server = ThreadingHTTPServer((str(listen["address"]), int(listen["port"])),
                                 handler_for((str(upstream["address"]), int(upstream["port"]))))
    server.serve_forever()
    return 0


def run() -> None:
    """Entry point of the packaged zipapp (its generated __main__ ignores return values)."""
    sys.exit(main())


if __name__ == "__main__":
    run()
