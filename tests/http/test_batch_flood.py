"""A `/chat/batch` with far more inputs than allowed is refused before any per-input work, so
it costs the worker almost nothing: the event loop keeps answering `/health/live`."""

from __future__ import annotations

import asyncio
import json
import time

import httpx

from tests.live_servers import StartGraphgate

INPUTS = 300_000
# A generous bound on one /health/live round trip while the flood is refused: before the
# count came first, validating the inputs stalled the loop 7-8 s here, and walking the parsed
# value for its depth 0.1-0.6 s more. What is left is the JSON parse and the depth read from the
# bytes: 0.06-0.1 s here.
STALL_BOUND = 0.5


async def slowest_probe(client: httpx.AsyncClient, done: asyncio.Event) -> float:
    """The slowest `/health/live` answer seen until `done` is set."""
    slowest = 0.0
    while not done.is_set():
        started = time.perf_counter()
        response = await client.get("/health/live")
        assert response.status_code == 200
        slowest = max(slowest, time.perf_counter() - started)
    return slowest


async def test_a_batch_of_300k_tiny_inputs_is_refused_without_stalling_the_worker(
    graphgate_factory: StartGraphgate, mode: str, user: str
) -> None:
    server = graphgate_factory(mode)
    body = json.dumps({"inputs": [{}] * INPUTS}, separators=(",", ":")).encode()
    assert len(body) < 1_048_576  # within MAX_BODY_BYTES: only the count is wrong
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30) as probe_client,
        httpx.AsyncClient(base_url=server.url, headers={"X-User-Id": user}, timeout=30) as client,
    ):
        await probe_client.get("/health/live")  # the probe's connection is open already
        done = asyncio.Event()
        probe = asyncio.create_task(slowest_probe(probe_client, done))
        response = await client.post(
            "/chat/batch", content=body, headers={"Content-Type": "application/json"}
        )
        done.set()
        slowest = await probe
    assert response.status_code == 413, response.text[:300]
    assert response.json()["error"]["code"] == "payload_too_large"
    assert f"this one has {INPUTS}" in response.json()["error"]["message"]
    assert slowest < STALL_BOUND, f"/health/live took {slowest:.2f} s during the refusal"
