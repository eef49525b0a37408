"""Concurrent server-sent-event streams against one server, each a fresh connection read until
the server closes it: the time to the first token, the gap between tokens, the tokens delivered
and the streams completed and failed. Run as a module so `taskset` can pin it to its own core:

    python -m bench.stream_load --url http://127.0.0.1:8000/chat/stream --concurrency 800 \
        --ramp 5 --seconds 12 --requests requests.json

It prints one JSON object. `requests.json` holds the requests, each with its `body` and
`headers`; client k sends request k, k + concurrency, ... in turn, so with one request per
client (one session each) a client's streams are the successive turns of its own session and
no two clients ever share a session. Each client opens its first stream at a moment drawn
uniformly over the ramp, so that the server sees a steady arrival rate rather than every
client at once, and opens its next stream when one ends, until `seconds` have passed; the run
ends when the last stream ends.

A token is an SSE `data` event; the time to first token runs from the connect to the read
that brings the first one, and the gap between two tokens is the time between the reads that
brought them (tokens read together have a gap of 0). A stream completes when it answered 200,
ended with an `end` event and sent no `error` event; any other outcome (a refused connection
too) fails it.

One core must carry 1,600 streams of 20 tokens/s, so each connection is a bare
`asyncio.Protocol` on uvloop: a read is counted where it arrives, with no task woken per read,
and only the new bytes are searched for the markers (with the few bytes of the read before, in
which a marker may have begun).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import resource
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import uvloop

DATA, END, ERROR = b"event: data", b"event: end", b"event: error"
OK = b"HTTP/1.1 200"
# What a read keeps of the one before: enough for any marker to straddle the two.
CARRY = max(len(DATA), len(END), len(ERROR)) - 1
# A stream still open after this long has failed (a server that hangs must not hang the run).
STREAM_TIMEOUT = 120.0


@dataclass
class Tally:
    """What every stream of the run has delivered so far."""

    completed: int = 0
    failed: int = 0
    tokens: int = 0
    completed_tokens: int = 0
    open: int = 0
    peak_open: int = 0
    first_token: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)


class Stream(asyncio.Protocol):
    """One stream's connection: sends the request, counts the tokens of each read as it
    arrives, and resolves `done` when the server closes the connection."""

    def __init__(self, request: bytes, tally: Tally, began: float) -> None:
        self.request, self.tally, self.began = request, tally, began
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.head, self.carry = b"", b""
        self.tokens, self.last = 0, 0.0
        self.ended = self.errored = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.WriteTransport, transport).write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if len(self.head) < len(OK):
            self.head += data[: len(OK) - len(self.head)]
        window = self.carry + data
        self.ended = self.ended or END in window
        self.errored = self.errored or ERROR in window
        count = window.count(DATA) - self.carry.count(DATA)
        self.carry = window[-CARRY:]
        if count:
            self.tokens_read(count, now)

    def tokens_read(self, count: int, now: float) -> None:
        """`count` tokens arrived together at `now`: the first after the gap since the last
        read that brought any (or the time to first token), the rest with no gap."""
        tally = self.tally
        if self.tokens:
            tally.gaps.append(now - self.last)
        else:
            tally.first_token.append(now - self.began)
        tally.gaps.extend([0.0] * (count - 1))
        tally.tokens += count
        self.tokens += count
        self.last = now

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def completed(self) -> bool:
        return self.head == OK and self.ended and not self.errored and self.tokens > 0


async def one_stream(host: str, port: int, request: bytes, tally: Tally) -> None:
    """Open one stream, read it to its end and count it as completed or failed."""
    began = time.perf_counter()
    loop = asyncio.get_running_loop()
    transport, stream = await loop.create_connection(
        lambda: Stream(request, tally, began), host, port
    )
    tally.open += 1
    tally.peak_open = max(tally.peak_open, tally.open)
    try:
        await asyncio.wait_for(stream.done, STREAM_TIMEOUT)
    finally:
        tally.open -= 1
        transport.close()
    if stream.completed():
        tally.completed += 1
        tally.completed_tokens += stream.tokens
    else:
        tally.failed += 1


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


async def run(
    url: str, concurrency: int, ramp: float, seconds: float, requests: list[dict[str, Any]]
) -> tuple[Tally, float]:
    """The streams of `concurrency` clients, each opening its first within `ramp` and the next
    as one ends until `seconds`, and how long they took (the last end after `seconds`)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    encoded = [request_bytes(url, r["body"], r.get("headers", {})) for r in requests]
    tally = Tally()
    started = time.perf_counter()
    until = started + seconds

    async def client(index: int) -> None:
        await asyncio.sleep(random.uniform(0, ramp))
        for turn in itertools.count(index, concurrency):
            try:
                await one_stream(host, port, encoded[turn % len(encoded)], tally)
            except (OSError, TimeoutError):
                tally.failed += 1
            if time.perf_counter() >= until:
                return

    await asyncio.gather(*(client(index) for index in range(concurrency)))
    return tally, time.perf_counter() - started


def percentile(values: list[float], share: int) -> float | None:
    if len(values) < 2:
        return values[0] if values else None
    return statistics.quantiles(values, n=100, method="inclusive")[share - 1]


def in_ms(seconds: float | None) -> float | None:
    return None if seconds is None else 1000.0 * seconds


def summary(tally: Tally, seconds: float) -> dict[str, Any]:
    """The run's figures, with this client's own CPU seconds: near `seconds`, it would be the
    client, not the server, that limits the level."""
    completed = tally.completed
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "seconds": seconds,
        "client_cpu_seconds": usage.ru_utime + usage.ru_stime,
        "completed": completed,
        "failed": tally.failed,
        "peak_open": tally.peak_open,
        "tokens": tally.tokens,
        "tokens_per_stream": tally.completed_tokens / completed if completed else 0,
        "ttft_p50_ms": in_ms(percentile(tally.first_token, 50)),
        "ttft_p99_ms": in_ms(percentile(tally.first_token, 99)),
        "token_gap_p99_ms": in_ms(percentile(tally.gaps, 99)),
        # The pace a stream was delivered at: below the model's, the server could not keep up
        # (its gaps grew evenly), which the p99 alone does not show.
        "tokens_per_second_per_stream": (
            len(tally.gaps) / sum(tally.gaps) if sum(tally.gaps) > 0 else None
        ),
    }


def raise_open_files() -> None:
    """Lift the soft limit on open files to the hard one: a level of 1,600 streams holds
    1,600 sockets, beyond the usual soft limit of 1,024."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--ramp", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--requests", type=Path, required=True)
    args = parser.parse_args()
    raise_open_files()
    requests = json.loads(args.requests.read_text())
    tally, elapsed = uvloop.run(run(args.url, args.concurrency, args.ramp, args.seconds, requests))
    print(json.dumps(summary(tally, elapsed)))


if __name__ == "__main__":
    main()
