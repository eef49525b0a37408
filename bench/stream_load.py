"""Concurrent server-sent-event streams against one server, each a fresh connection that reads
until the server closes it: streams completed per second, the time to the first token and the
gap between tokens. Run as a module so `taskset` can pin it to its own core:

    python -m bench.stream_load --url http://127.0.0.1:8000/chat/stream --concurrency 64 \
        --seconds 10 --requests requests.json

It prints one JSON object. `requests.json` holds the requests to cycle through, each with its
`body` and `headers`. A token is an SSE `data` event; the gap between two tokens is the time
between the reads that brought them (tokens read together have a gap of 0).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DATA = b"event: data"


@dataclass
class Streams:
    completed: int = 0
    failed: int = 0
    first_token: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)
    tokens: int = 0


def request_bytes(url: str, body: dict[str, Any], headers: dict[str, str]) -> bytes:
    parts = urlsplit(url)
    payload = json.dumps(body).encode()
    lines = [
        f"POST {parts.path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/json",
        "Accept: text/event-stream",
        "Connection: close",
        f"Content-Length: {len(payload)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + payload


async def one_stream(host: str, port: int, request: bytes, streams: Streams) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    sent = time.perf_counter()
    writer.write(request)
    buffer, seen, last = b"", 0, 0.0
    try:
        while chunk := await reader.read(65536):
            now = time.perf_counter()
            buffer += chunk
            count = buffer.count(DATA)
            for _ in range(count - seen):
                if last == 0.0:
                    streams.first_token.append(now - sent)
                else:
                    streams.gaps.append(now - last)
                last = now
            seen = count
    finally:
        writer.close()
    ok = buffer.startswith(b"HTTP/1.1 200") and seen > 0 and b"event: error" not in buffer
    if ok:
        streams.completed += 1
        streams.tokens += seen
    else:
        streams.failed += 1


async def run(
    url: str, concurrency: int, seconds: float, requests: list[dict[str, Any]]
) -> tuple[Streams, float]:
    """The streams of `concurrency` clients that start streams for `seconds`, and how long
    they took (the last streams end after `seconds`)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    encoded = [request_bytes(url, r["body"], r.get("headers", {})) for r in requests]
    cycle = itertools.cycle(encoded)
    streams = Streams()
    started = time.perf_counter()
    until = started + seconds

    async def client() -> None:
        while time.perf_counter() < until:
            try:
                await one_stream(host, port, next(cycle), streams)
            except OSError:
                streams.failed += 1

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return streams, time.perf_counter() - started


def percentile(values: list[float], share: int) -> float | None:
    if len(values) < 2:
        return values[0] if values else None
    return statistics.quantiles(values, n=100, method="inclusive")[share - 1]


def summary(streams: Streams, seconds: float) -> dict[str, Any]:
    ms = 1000.0
    ttft_p50 = percentile(streams.first_token, 50)
    gap_p99 = percentile(streams.gaps, 99)
    return {
        "streams_per_second": streams.completed / seconds,
        "completed": streams.completed,
        "failed": streams.failed,
        "tokens_per_stream": streams.tokens / streams.completed if streams.completed else 0,
        "ttft_p50_ms": None if ttft_p50 is None else ttft_p50 * ms,
        "token_gap_p99_ms": None if gap_p99 is None else gap_p99 * ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--requests", type=Path, required=True)
    args = parser.parse_args()
    requests = json.loads(args.requests.read_text())
    streams, elapsed = asyncio.run(run(args.url, args.concurrency, args.seconds, requests))
    print(json.dumps(summary(streams, elapsed)))


if __name__ == "__main__":
    main()
