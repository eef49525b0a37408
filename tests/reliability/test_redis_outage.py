"""Drill: Redis is killed (`kill -9`) during a minute (half of one in `make test`) of multi-turn
traffic from 20 clients and comes back from its AOF (`appendfsync always`). Every turn
acknowledged with a 2xx is in its session's history afterwards; while Redis is down, requests
get 503 `unavailable` within 2 s and readiness is 503; once Redis is back the service recovers
by itself."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from scripts.processes import rss_mb, worker_pids
from tests.live_servers import StartGraphgate
from tests.reliability.drill import (
    LEASE,
    Deadline,
    DurableRedis,
    Record,
    converse,
    lost_turns,
    report,
    session_drill_server,
    timeline,
    watch_readiness,
)
from tests.upstream import Upstream

CLIENTS, DOWN_FOR = 20, 8.0
DURATION, KILL_AT = timeline(60.0, 30.0), timeline(20.0, 8.0)


async def test_no_acknowledged_turn_is_lost_when_redis_is_killed_and_restarted(
    graphgate_factory: StartGraphgate, upstream: Upstream, tmp_path: Path, marker: str
) -> None:
    redis = DurableRedis(tmp_path / "data", tmp_path / "redis.log")
    (tmp_path / "data").mkdir()
    redis.start()
    server = session_drill_server(graphgate_factory, redis.url)
    record = Record()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            start = time.monotonic()
            until = Deadline(start + DURATION)
            clients = [
                asyncio.create_task(converse(client, i, marker, until, record))
                for i in range(CLIENTS)
            ]
            readiness = asyncio.create_task(watch_readiness(client, until))
            await asyncio.sleep(KILL_AT)  # the drill's timeline, not a synchronisation
            redis.kill()
            killed = time.monotonic()
            await asyncio.sleep(DOWN_FOR)
            restarting = time.monotonic()
            await asyncio.to_thread(redis.start)
            back = time.monotonic()
            acknowledged = await asyncio.gather(*clients)
            ready = await readiness
            histories = [
                await client.get("/chat/sessions/s", headers={"X-User-Id": f"u{i}{marker}"})
                for i in range(CLIENTS)
            ]
        assert server.process.process is not None
        rss = {pid: rss_mb(pid) for pid in worker_pids(server.process.process.pid)}
    finally:
        server.process.stop()
        redis.stop()

    # While Redis was down (after the turns in flight at the kill): 503 unavailable, fast.
    down = record.between(killed + 0.5, restarting)
    assert down, "no request ran while Redis was down"
    assert record.statuses(down) == {"503 unavailable": len(down)}
    assert max(o.seconds for o in down) <= 2.0
    assert any(status == 503 for at, status in ready if killed + 0.5 < at < restarting)
    # Back by itself: every request that started a lease after Redis returned succeeded.
    settled = [o for o in record.outcomes if o.started > back + LEASE + 1]
    assert record.statuses(settled) == {"200": len(settled)}
    first_success = min(o.ended for o in record.outcomes if o.started > back and o.status == 200)
    assert ready[-1][1] == 200
    lost = lost_turns(acknowledged, histories)
    report(
        "redis_outage",
        {
            "requests": len(record.outcomes),
            "by_status": record.statuses(),
            "redis_down_seconds": round(restarting - killed, 2),
            "while_down": record.statuses(down),
            "slowest_while_down_seconds": round(max(o.seconds for o in down), 3),
            "first_success_after_redis_back_seconds": round(first_success - back, 3),
            "turns_acknowledged": sum(len(q) for q in acknowledged),
            "turns_lost": lost,
            "worker_rss_mb_at_end": rss,
        },
    )
    assert lost == 0
