"""GLOBAL_MAX_CONCURRENCY's store on every Redis flavour (Stack, no modules, Cluster, where the
stripes live on several shards): the limit holds across processes and stripes and is all
usable, a released slot is taken at once, a waiter is refused after its wait, renewal keeps a
slot and a slot whose holder died is reclaimed by its TTL.

The HTTP tests (`tests/http/test_global_concurrency.py`) check the same limit end to end over
gunicorn workers on one Redis; this suite is what runs it on each flavour."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from graphs.limits.concurrency import Lease, RedisLeasePool
from graphs.store.redis_client import RedisClient

LIMIT = 5
STRIPES = 4
TTL = 1.5


@pytest.fixture
def prefix() -> str:
    """A pool of this test's own (every test's slots start free)."""
    return f"test-slots-{uuid.uuid4().hex[:10]}:"


def pool(redis: RedisClient, prefix: str, ttl: float = 30.0) -> RedisLeasePool:
    """One process's view of the pool (each worker builds its own over the same Redis)."""
    return RedisLeasePool(redis, prefix, limit=LIMIT, ttl_seconds=ttl, stripes=STRIPES)


async def take_all(pools: list[RedisLeasePool]) -> list[Lease]:
    leases = [await pools[index % len(pools)].acquire(within=0) for index in range(LIMIT)]
    assert None not in leases, "the whole limit must be usable, whichever stripe is tried"
    return [lease for lease in leases if lease is not None]


async def test_the_whole_limit_is_usable_across_stripes_and_never_more(
    redis: RedisClient, prefix: str
) -> None:
    pools = [pool(redis, prefix), pool(redis, prefix)]
    leases = await take_all(pools)
    assert len({lease.key for lease in leases}) == STRIPES
    assert await pools[0].acquire(within=0) is None
    assert await pools[1].acquire(within=0) is None
    await pools[0].release(leases[0])
    again = await pools[1].acquire(within=0)
    assert again is not None
    for lease in [again, *leases[1:]]:
        await pools[0].release(lease)


async def test_forty_callers_in_two_processes_never_hold_more_than_the_limit(
    redis: RedisClient, prefix: str
) -> None:
    pools = [pool(redis, prefix), pool(redis, prefix)]
    holding = 0
    most = 0

    async def call(index: int) -> None:
        nonlocal holding, most
        lease = await pools[index % 2].acquire(within=20)
        assert lease is not None
        holding += 1
        most = max(most, holding)
        await asyncio.sleep(0.05)
        holding -= 1
        await pools[index % 2].release(lease)

    await asyncio.gather(*(call(index) for index in range(40)))
    assert most == LIMIT


async def test_a_waiter_is_refused_once_its_wait_is_over(redis: RedisClient, prefix: str) -> None:
    full = pool(redis, prefix)
    leases = await take_all([full])
    started = time.monotonic()
    assert await pool(redis, prefix).acquire(within=0.5) is None
    assert 0.5 <= time.monotonic() - started < 1.5
    for lease in leases:
        await full.release(lease)


async def test_a_renewed_slot_is_kept_and_a_dead_holders_slot_comes_back_after_its_ttl(
    redis: RedisClient, prefix: str
) -> None:
    alive, dead = pool(redis, prefix, TTL), pool(redis, prefix, TTL)
    kept = await alive.acquire(within=0)
    assert kept is not None
    lost = [await dead.acquire(within=0) for _ in range(LIMIT - 1)]
    assert await alive.acquire(within=0) is None
    started = time.monotonic()
    while time.monotonic() - started < TTL * 2:  # the live holder renews, the dead one cannot
        await alive.renew(kept)
        await asyncio.sleep(alive.renew_every)
    back = [await alive.acquire(within=0) for _ in range(LIMIT - 1)]
    assert None not in back, "a dead holder's slots are free after the TTL"
    assert None not in lost
    assert await alive.acquire(within=0) is None, "the renewed slot is still held"
    for lease in [kept, *back]:
        assert lease is not None
        await alive.release(lease)
