"""Background runs' leases on every Redis flavour (Stack, no modules, Cluster): every write
leaves both lease keys expiring, its TTL refreshed, so that an idle service leaves no immortal
key; and the TTL outlives a renewal and a take-over, however short `SESSION_TTL` is."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest

from graphs.memory.run_leases import RedisRunLeases
from graphs.store.keys import RedisKeys
from graphs.store.redis_client import RedisClient

TTL = 60
SHORT = 5  # what a key's TTL is cut to before a write, to see the write restore it


@pytest.fixture
def keys() -> RedisKeys:
    return RedisKeys(f"test-leases-{uuid.uuid4().hex[:10]}:")


async def ttls(redis: RedisClient, keys: RedisKeys) -> list[int]:
    return [await redis.ttl(key) for key in (keys.run_leases(), keys.run_owners())]


async def expiring_within(redis: RedisClient, keys: RedisKeys, low: int, high: int) -> bool:
    """Whether both lease keys expire in more than `low` and at most `high` seconds."""
    found = await ttls(redis, keys)
    return all(low < ttl <= high for ttl in found)


async def cut_ttls(redis: RedisClient, keys: RedisKeys) -> None:
    for key in (keys.run_leases(), keys.run_owners()):
        await redis.expire(key, SHORT)


async def test_every_lease_write_refreshes_both_keys_ttl(
    redis: RedisClient, keys: RedisKeys
) -> None:
    leases = RedisRunLeases(redis, keys.prefix, 0.001, TTL)  # lapses at once: claimable
    await leases.take("ann", "r1", "w1")
    await leases.take("ann", "r2", "w1")
    assert await expiring_within(redis, keys, SHORT, TTL), await ttls(redis, keys)
    writes: list[Callable[[], Awaitable[object]]] = [
        lambda: leases.renew("ann", "r1", "w1"),
        lambda: leases.hand_back("ann", "r1", "w1"),
        lambda: leases.claim_lapsed("w2"),
        lambda: leases.end("ann", "r1", "w2"),
    ]
    for write in writes:
        await cut_ttls(redis, keys)
        await write()
        assert await expiring_within(redis, keys, SHORT, TTL), await ttls(redis, keys)
    await leases.end("ann", "r2", "w1")
    assert await ttls(redis, keys) == [-2, -2]  # the last run ended: no key is left


async def test_the_lease_keys_outlive_three_leases_whatever_the_session_ttl(
    redis: RedisClient, keys: RedisKeys
) -> None:
    """Renewed every third of a lease and claimed within a lease and a third of one, the keys
    must not expire between two writes while a run lives, even with `SESSION_TTL` shorter."""
    leases = RedisRunLeases(redis, keys.prefix, 100.0, TTL)
    await leases.take("ann", "r1", "w1")
    assert await expiring_within(redis, keys, 290, 300), await ttls(redis, keys)
