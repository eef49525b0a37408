"""Drill: a master of a Redis Cluster is killed (`kill -9`) while 20 clients hold multi-turn
sessions; its replica takes over, and the killed node comes back as a replica of it. Meanwhile
graphgate answers 503 (never a 500), and it recovers by itself. With `REDIS_WAIT_REPLICAS=1` no
acknowledged turn is missing afterwards; without it, the drill counts the turns lost to
asynchronous replication (docs/deploy.md quotes the figures)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
import redis

from scripts.redis_cluster import LocalCluster
from tests.live_servers import StartGraphgate
from tests.reliability.drill import (
    LEASE,
    Deadline,
    Record,
    converse,
    lost_turns,
    report,
    session_drill_server,
    watch_readiness,
)
from tests.upstream import Upstream

CLIENTS, KILL_AT, AFTER = 20, 8.0, 10.0  # AFTER: seconds of traffic once recovered
EXPECTED = {"200", "503 unavailable", "503 session_busy"}


def session_key(index: int, marker: str) -> str:
    return f"graphgate:checkpoint:{{u{index}{marker}:s}}"


@pytest.mark.parametrize("wait_replicas", [1, 0])
async def test_a_killed_master_is_replaced_and_with_wait_no_acknowledged_turn_is_lost(
    graphgate_factory: StartGraphgate,
    upstream: Upstream,
    tmp_path: Path,
    marker: str,
    wait_replicas: int,
) -> None:
    cluster = LocalCluster(tmp_path / "cluster", tmp_path)
    cluster.start()
    server = session_drill_server(
        graphgate_factory,
        cluster.url,
        REDIS_CLUSTER="true",
        REDIS_WAIT_REPLICAS=str(wait_replicas),
    )
    record = Record()
    try:
        # The master of client 0's session, so that the failover cuts live sessions.
        finder = redis.RedisCluster.from_url(cluster.url)
        victim_port = finder.get_node_from_key(session_key(0, marker)).port  # type: ignore[no-untyped-call]
        finder.close()
        victim = next(node for node in cluster.master_nodes() if node.port == victim_port)
        successor = cluster.replica_of(victim)
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            # Moved once the replica is back; bounded meanwhile, should the failover never come.
            until = Deadline(time.monotonic() + KILL_AT + 60)
            clients = [
                asyncio.create_task(converse(client, i, marker, until, record))
                for i in range(CLIENTS)
            ]
            readiness = asyncio.create_task(watch_readiness(client, until))
            await asyncio.sleep(KILL_AT)  # the drill's timeline, not a synchronisation
            cluster.kill(victim)
            killed = time.monotonic()
            await asyncio.to_thread(
                successor.process.wait_for_line, lambda line: "Failover election won" in line, 20
            )
            promoted = time.monotonic()
            await asyncio.to_thread(cluster.restart, victim)
            await asyncio.to_thread(
                victim.process.wait_for_line, lambda line: "sync: Finished with success" in line, 20
            )
            rejoined = time.monotonic()
            until.at = rejoined + LEASE + 1 + AFTER
            acknowledged = await asyncio.gather(*clients)
            ready = await readiness
            histories = [
                await client.get("/chat/sessions/s", headers={"X-User-Id": f"u{i}{marker}"})
                for i in range(CLIENTS)
            ]
    finally:
        server.process.stop()
        cluster.stop()

    failed = [o for o in record.outcomes if o.status != 200]
    settled = [o for o in record.outcomes if o.started > rejoined + LEASE + 1]
    lost = lost_turns(acknowledged, histories)
    figures = {
        "redis_wait_replicas": wait_replicas,
        "requests": len(record.outcomes),
        "by_status": record.statuses(),
        "failover_seconds": round(promoted - killed, 2),
        "replica_back_seconds": round(rejoined - killed, 2),
        "slowest_failed_seconds": round(max((o.seconds for o in failed), default=0), 3),
        "requests_after_recovery": record.statuses(settled),
        "turns_acknowledged": sum(len(q) for q in acknowledged),
        "turns_lost": lost,
    }
    report(f"cluster_failover_wait_{wait_replicas}", figures)
    assert set(record.statuses()) <= EXPECTED, figures
    assert failed, "the failover cut no request"
    assert settled, figures
    assert record.statuses(settled) == {"200": len(settled)}, figures
    assert ready[-1][1] == 200
    if wait_replicas:
        assert lost == 0, figures
