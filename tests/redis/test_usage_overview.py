"""Every principal's usage per day, summed in the worker and written when due, striped over
hash slots: what a range reads back is the sum of what turns recorded, by model, route and
principal, on every flavour (on a Cluster each stripe is a slot of its own), and a principal
recorded under two stripe counts (the count was raised) is summed."""

from __future__ import annotations

import uuid
from datetime import date

from graphs.limits.usage_counters import COUNTERS
from graphs.limits.usage_overview import RedisUsageOverview, TurnUsage
from graphs.store.keys import RedisKeys
from graphs.store.redis_client import RedisClient
from graphs.store.round_trip import RoundTrip

DAYS = [date(2026, 12, 1), date(2026, 12, 2)]


async def test_a_range_reads_back_the_sum_of_what_turns_recorded(redis: RedisClient) -> None:
    keys = RedisKeys(f"overview-{uuid.uuid4().hex[:8]}:")
    four = RedisUsageOverview(redis, keys, 3600, COUNTERS, stripes=4, flush_seconds=3600)
    trip = RoundTrip(redis)
    for day in DAYS:
        for n in range(20):
            counters = {"requests": 1, "total_tokens": 10 + n, "cost_usd": 0.5}
            turn = TurnUsage(f"p{n}", "m1" if n % 2 else "m2", "chat", counters)
            four.record_in(trip, day, turn)
    await trip.send_checked()
    reader = RedisUsageOverview(redis, keys, 3600, COUNTERS, stripes=4)
    assert await reader.principals(DAYS) == {}  # summed in memory, not written yet
    await four.flush()
    # The stripe count changed: p0's later turns go to another stripe's keys. Due at once
    # (0 s), its sums ride on the turn's own trip.
    three = RedisUsageOverview(redis, keys, 3600, COUNTERS, stripes=3, flush_seconds=0)
    trip = RoundTrip(redis)
    three.record_in(trip, DAYS[1], TurnUsage("p0", "m2", "summarize", {"requests": 1}))
    await trip.send_checked()

    principals = await reader.principals(DAYS)
    assert len(principals) == 20
    assert principals["p7"] == {"requests": 2, "total_tokens": 34, "cost_usd": 1.0}
    assert principals["p0"]["requests"] == 3  # two stripes, summed
    days = await reader.days(DAYS)
    assert days["2026-12-01"].total == {"requests": 20, "total_tokens": 390, "cost_usd": 10.0}
    assert days["2026-12-01"].models["m1"]["requests"] == 10
    assert days["2026-12-02"].routes["chat"]["requests"] == 20
    assert days["2026-12-02"].routes["summarize"]["requests"] == 1
