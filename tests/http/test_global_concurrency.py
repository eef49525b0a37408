"""GLOBAL_MAX_CONCURRENCY holds across gunicorn workers, and a killed worker's slots come back
within CONCURRENCY_LEASE_TTL. End to end on one Redis; the slots' store runs on every flavour
(Redis Cluster too, where the slots are spread over the shards) in
`tests/redis/test_concurrency_store.py`."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter

import httpx
import pytest
import redis

from scripts.processes import worker_pids
from tests.conftest import mode_fixture
from tests.live_servers import Graphgate, StartGraphgate
from tests.upstream import Upstream

GLOBAL_LIMIT = 5
LEASE_TTL = 3.0


mode = mode_fixture(["redis"])  # the flavours: tests/redis/test_concurrency_store.py


@pytest.fixture
def cluster(graphgate_factory: StartGraphgate, mode: str) -> Graphgate:
    return graphgate_factory(
        mode,
        workers=4,
        GLOBAL_MAX_CONCURRENCY=str(GLOBAL_LIMIT),
        CONCURRENCY_LEASE_TTL=str(LEASE_TTL),
        QUEUE_TIMEOUT="20",
    )


async def ask(client: httpx.AsyncClient, question: str) -> httpx.Response:
    return await client.post("/chat/invoke", json={"input": {"question": question}})


async def test_forty_requests_over_four_workers_never_exceed_the_global_limit(
    cluster: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, latency_ms=500)
    limits = httpx.Limits(max_connections=40)
    headers = {"X-User-Id": user}
    async with httpx.AsyncClient(
        base_url=cluster.url, headers=headers, limits=limits, timeout=60
    ) as client:
        responses = await asyncio.gather(*(ask(client, f"q{i} {marker}") for i in range(40)))
    assert [r.status_code for r in responses] == [200] * 40
    stats = upstream.stats(marker)
    assert stats["requests"] == 40
    assert stats["peak_in_flight"] == GLOBAL_LIMIT


def lease_owners(store: redis.Redis | redis.RedisCluster, server: Graphgate) -> Counter[int]:
    """The pid of each of `server`'s workers that holds a lease, with how many it holds, from
    the lease ids (`host:pid:uuid`) in every stripe (another server's leases are not counted:
    the test must kill one of this server's workers, nothing else)."""
    assert server.process.process is not None
    workers = worker_pids(server.process.process.pid)
    members = [
        str(member)
        for key in store.scan_iter(match="graphgate:concurrency:*")
        for member in store.zrange(key, 0, -1)
    ]
    pids = (int(member.split(":")[1]) for member in members)
    return Counter(pid for pid in pids if pid in workers)


async def test_slots_of_a_killed_worker_are_usable_again_within_the_lease_ttl(
    cluster: Graphgate,
    upstream: Upstream,
    redis_store: redis.Redis | redis.RedisCluster,
    user: str,
    marker: str,
) -> None:
    upstream.behave(f"hang {marker}", hang=True)
    headers = {"X-User-Id": user}
    limits = httpx.Limits(max_connections=20)
    async with httpx.AsyncClient(
        base_url=cluster.url, headers=headers, limits=limits, timeout=60
    ) as client:
        hanging = [
            asyncio.create_task(ask(client, f"hang {marker} {i}")) for i in range(GLOBAL_LIMIT)
        ]
        assert await upstream.wait_for(f"hang {marker}", "in_flight", GLOBAL_LIMIT) is not None
        victim, held = lease_owners(redis_store, cluster).most_common(1)[0]
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        # Only the victim's slots can free up: the other hanging calls keep theirs.
        fresh = await asyncio.gather(*(ask(client, f"after {marker} {i}") for i in range(held)))
        waited = time.monotonic() - killed_at
        for task in hanging:
            task.cancel()
        await asyncio.gather(*hanging, return_exceptions=True)
    assert [r.status_code for r in fresh] == [200] * held
    assert waited <= LEASE_TTL + 1
    print(f"killed worker held {held} slot(s); usable again after {waited:.2f} s")
    assert upstream.stats(f"after {marker}")["requests"] == held


async def test_waiting_longer_than_queue_timeout_for_a_slot_is_503_with_retry_after(
    graphgate_factory: StartGraphgate, upstream: Upstream, user: str, marker: str, mode: str
) -> None:
    server = graphgate_factory(mode, GLOBAL_MAX_CONCURRENCY="1", QUEUE_TIMEOUT="1")
    upstream.behave(f"hold {marker}", hang=True)
    async with httpx.AsyncClient(
        base_url=server.url, headers={"X-User-Id": user}, timeout=30
    ) as client:
        holder = asyncio.create_task(ask(client, f"hold {marker}"))
        assert await upstream.wait_for(f"hold {marker}", "in_flight") is not None
        started = time.monotonic()
        refused = await ask(client, f"queued {marker}")
        waited = time.monotonic() - started
        holder.cancel()
        await asyncio.gather(holder, return_exceptions=True)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "unavailable"
    assert int(refused.headers["Retry-After"]) >= 1
    assert 1 <= waited < 2
    assert upstream.stats(f"queued {marker}")["requests"] == 0
