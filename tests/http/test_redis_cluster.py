"""graphgate on a Redis Cluster of three masters, under gunicorn with four workers: the rate limit
is exact, the global concurrency slots are spread over the shards, and every key a run leaves
expires."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import pytest
import redis

from scripts.processes import ManagedProcess, child_env
from tests.live_servers import Graphgate, StartGraphgate
from tests.redis_servers import RedisFlavours
from tests.sse import post_stream
from tests.upstream import Upstream

RATE_LIMIT = 10
GLOBAL_LIMIT = 5
PREFIX = "ggcluster:"  # this module's keys only, apart from the other tests' on the cluster


@pytest.fixture(scope="module")
def server(graphgate_factory: StartGraphgate) -> Graphgate:
    return graphgate_factory(
        "cluster",
        workers=4,
        REDIS_PREFIX=PREFIX,
        RATE_LIMIT_MAX=str(RATE_LIMIT),
        GLOBAL_MAX_CONCURRENCY=str(GLOBAL_LIMIT),
        TOKENS_PER_MINUTE="100000",
        CACHE_MODE="exact",
        QUEUE_TIMEOUT="20",
    )


async def ask(client: httpx.AsyncClient, question: str, session: str = "") -> httpx.Response:
    body: dict[str, object] = {"input": {"question": question}}
    if session:
        body["config"] = {"configurable": {"session_id": session}}
    return await client.post("/chat/invoke", json=body)


async def test_thirty_simultaneous_requests_over_four_workers_get_exactly_the_rate_limit(
    server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, latency_ms=200)
    async with httpx.AsyncClient(
        base_url=server.url, headers={"X-User-Id": user}, timeout=60
    ) as client:
        responses = await asyncio.gather(*(ask(client, f"q{i} {marker}") for i in range(30)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * RATE_LIMIT + [429] * (30 - RATE_LIMIT)
    assert upstream.stats(marker)["requests"] == RATE_LIMIT


async def test_the_global_slots_in_use_live_on_more_than_one_shard(
    server: Graphgate, upstream: Upstream, redis_flavours: RedisFlavours, marker: str
) -> None:
    upstream.behave(f"hang {marker}", hang=True)
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        hanging = [
            asyncio.create_task(
                client.post(
                    "/chat/invoke",
                    json={"input": {"question": f"hang {marker} {i}"}},
                    headers={"X-User-Id": f"u{i}-{marker}"},
                )
            )
            for i in range(GLOBAL_LIMIT)
        ]
        assert await upstream.wait_for(f"hang {marker}", "in_flight", GLOBAL_LIMIT) is not None
        holders = {
            node.port
            for node in redis_flavours.cluster.master_nodes()
            for _ in redis.Redis(port=node.port).scan_iter(match=f"{PREFIX}concurrency:*")
        }
        for task in hanging:
            task.cancel()
        await asyncio.gather(*hanging, return_exceptions=True)
    assert len(holders) >= 2, holders


def test_every_key_a_run_leaves_on_the_cluster_expires(
    server: Graphgate, redis_flavours: RedisFlavours, user: str
) -> None:
    headers = {"X-User-Id": user}
    for turn in range(2):
        body = {
            "input": {"question": f"turn {turn}"},
            "config": {"configurable": {"session_id": "s1"}},
        }
        assert (
            httpx.post(f"{server.url}/chat/invoke", json=body, headers=headers).status_code == 200
        )
    streamed = post_stream(f"{server.url}/chat/stream", {"input": {"question": "turn 0"}}, headers)
    assert streamed.status == 200
    keys = {
        (node.port, str(key))
        for node in redis_flavours.cluster.master_nodes()
        for key in redis.Redis(port=node.port, decode_responses=True).scan_iter(match=f"{PREFIX}*")
    }
    ttls = {key: redis.Redis(port=port).pttl(key) for port, key in keys}
    mine = {key: ttl for key, ttl in ttls.items() if user in key}
    kinds = {key.split(":")[1] for key in mine}
    assert {"checkpoint", "session_fence", "ratelimit", "usage", "tpm", "cache"} <= kinds, kinds
    assert all(ttl > 0 for ttl in mine.values()), mine
    # The module's other keys too (-2: expired between the scan and the look, as leases do).
    assert all(ttl > 0 or ttl == -2 for ttl in ttls.values()), ttls


def test_make_redis_cluster_serves_a_cluster_until_stopped(tmp_path: Path) -> None:
    """What `make redis-cluster` runs: it prints the settings to use, and stops its nodes."""
    process = ManagedProcess(
        [sys.executable, "-m", "scripts.redis_cluster"],
        env=child_env(),
        ready_text="REDIS_CLUSTER=true",
        log_path=tmp_path / "redis-cluster.log",
    )
    process.start()
    try:
        (line,) = [line for line in process.lines if "REDIS_URL=" in line]
        url = line.split("REDIS_URL=")[1].split()[0]
        client = redis.RedisCluster.from_url(url, decode_responses=True)
        client.set("{make}:key", "value")
        assert client.get("{make}:key") == "value"
        client.close()
        seed = redis.Redis.from_url(url, decode_responses=True)
        reply = seed.execute_command("CLUSTER", "INFO")  # type: ignore[no-untyped-call]
        info = dict(line.partition(":")[::2] for line in str(reply).split())
        assert (info["cluster_size"], info["cluster_known_nodes"]) == ("3", "6")
        seed.close()
    finally:
        assert process.stop() == 0
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url).ping()
