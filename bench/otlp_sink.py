"""An OTLP/HTTP endpoint that takes every export and keeps only its size: what a collector
costs graphgate is its exporter's work, which is what `make bench` measures with tracing on."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from scripts.processes import free_port


class Sink(BaseHTTPRequestHandler):
    received = 0  # bytes, over every request

    def do_POST(self) -> None:
        Sink.received += len(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


@contextmanager
def otlp_sink() -> Iterator[str]:
    """A sink on loopback while the block runs: its URL, for `OTEL_EXPORTER_OTLP_ENDPOINT`."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
