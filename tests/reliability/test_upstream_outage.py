"""Drill: the primary model misbehaves every way it can (500s, a 429 storm with Retry-After,
connections reset mid-stream, malformed chunks, hangs) under 50 concurrent clients. Each
request succeeds through retry or fallback, or fails with the right status inside the deadline;
nothing hangs, no worker dies, and every slot, lease, session lock and gauge is back to zero."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import httpx
import redis.asyncio as aioredis
from httpx_sse import aconnect_sse

from scripts.processes import alive, rss_mb, worker_pids
from tests.conftest import PRIMARY_MODEL
from tests.live_servers import StartGraphgate
from tests.reliability.drill import report
from tests.upstream import Upstream

CLIENTS, ROUNDS = 50, 2
DEADLINE = 6.0  # REQUEST_TIMEOUT
# Every client's call gets a slot at once: the outcome of each depends on its fault alone.
GLOBAL_LIMIT = CLIENTS
# Each fault of the primary, and what a client must see on invoke and on a stream: the
# fallback's answer, or the error. An invoke asks for the whole reply, so a reply broken
# half-way has delivered nothing and falls back; a stream's words are already out.
FAULTS: dict[str, tuple[dict[str, Any], dict[str, int]]] = {
    "errors": ({"statuses": [500] * 1000}, {"invoke": 200, "stream": 200}),
    "storm": ({"statuses": [429] * 1000, "retry_after": 1}, {"invoke": 200, "stream": 200}),
    "reset": (
        {"tokens": 20, "tokens_per_second": 40, "drop_after": 5},
        {"invoke": 200, "stream": 502},
    ),
    "malformed": ({"tokens": 20, "malformed": True}, {"invoke": 200, "stream": 502}),
    "hang": ({"hang": True}, {"invoke": 504, "stream": 504}),
}


async def one_request(
    client: httpx.AsyncClient, kind: str, index: int, endpoint: str, marker: str
) -> tuple[str, int, float]:
    """A turn of the client's session for `kind`: the status it ended with (a stream's error
    event counts as its status) and how long it took."""
    body = {
        "input": {"question": f"{kind} {marker} from {index}"},
        "config": {"configurable": {"session_id": f"{kind}-{index}"}},
    }
    headers = {"X-User-Id": f"u{index}{marker}"}
    started = time.monotonic()
    if endpoint == "invoke":
        response = await client.post("/chat/invoke", json=body, headers=headers)
        return f"{kind} {endpoint}", response.status_code, time.monotonic() - started
    status = 0
    async with aconnect_sse(client, "POST", "/chat/stream", json=body, headers=headers) as source:
        status = source.response.status_code
        async for event in source.aiter_sse():
            if event.event == "error":
                status = int(event.json()["status_code"])
    return f"{kind} {endpoint}", status, time.monotonic() - started


async def client_run(client: httpx.AsyncClient, index: int, marker: str) -> list[Any]:
    results = []
    for round_ in range(ROUNDS):
        for kind in FAULTS:
            endpoint = "invoke" if (index + round_) % 2 else "stream"
            results.append(await one_request(client, kind, index, endpoint, marker))
    return results


async def upstream_settles(upstream: Upstream, marker: str, within: float = 10) -> dict[str, Any]:
    """The upstream's stats once none of the drill's calls is open there any more."""
    deadline = time.monotonic() + within
    while True:
        stats = await upstream.astats(marker)
        if stats["in_flight"] == 0 or time.monotonic() > deadline:
            return stats
        await asyncio.sleep(0.1)


def gauge(metrics: str, name: str) -> float:
    (line,) = [line for line in metrics.splitlines() if line.startswith(f"{name} ")]
    return float(line.split()[1])


async def test_every_request_ends_right_and_everything_is_released_under_an_outage(
    graphgate_factory: StartGraphgate, upstream: Upstream, redis_url: str, marker: str
) -> None:
    for kind, (behavior, _) in FAULTS.items():
        upstream.behave(f"{kind} {marker}", model=PRIMARY_MODEL, **behavior)
    server = graphgate_factory(
        "redis",
        fresh=True,
        workers=2,
        REQUEST_TIMEOUT=str(DEADLINE),
        LLM_ATTEMPT_TIMEOUT="2",
        GLOBAL_MAX_CONCURRENCY=str(GLOBAL_LIMIT),
        MAX_CONCURRENCY="50",
        QUEUE_TIMEOUT="10",
    )
    assert server.process.process is not None
    workers = worker_pids(server.process.process.pid)
    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as client:
        runs = await asyncio.gather(*(client_run(client, i, marker) for i in range(CLIENTS)))
        metrics = (await client.get("/metrics")).text
    rss = {pid: rss_mb(pid) for pid in workers}
    results = [result for run in runs for result in run]
    stats = await upstream_settles(upstream, marker)

    outcomes = Counter(f"{kind} {status}" for kind, status, _ in results)
    expected = Counter(
        {
            f"{kind} {endpoint} {status}": CLIENTS * ROUNDS // 2
            for kind, (_, statuses) in FAULTS.items()
            for endpoint, status in statuses.items()
        }
    )
    slowest = max(seconds for _, _, seconds in results)
    store = aioredis.Redis.from_url(redis_url)
    leases = await store.zcard("graphgate:concurrency")
    locks = [key async for key in store.scan_iter(f"graphgate:session_lock:{{u*{marker}:*")]
    await store.aclose()
    report(
        "upstream_outage",
        {
            "requests": len(results),
            "outcomes": outcomes,
            "slowest_seconds": round(slowest, 3),
            "upstream_requests": stats["requests"],
            "upstream_peak_in_flight": stats["peak_in_flight"],
            "workers_alive_after": sum(alive(pid) for pid in workers),
            "worker_rss_mb_at_end": rss,
        },
    )
    assert outcomes == expected
    assert slowest <= DEADLINE + 2
    assert all(alive(pid) for pid in workers)
    assert worker_pids(server.process.process.pid) == workers  # none died and was replaced
    assert stats["in_flight"] == 0
    assert stats["peak_in_flight"] <= GLOBAL_LIMIT
    assert leases == 0
    assert locks == []
    assert gauge(metrics, "graphgate_http_requests_in_flight") == 1  # the /metrics request
    assert gauge(metrics, "graphgate_open_streams") == 0
