"""The session lock's store on every Redis flavour (Stack, no modules, Cluster): one holder per
session across processes, waiters served in turn or refused after their wait, a fencing token
that grows with each holder, a lease that passes the lock on when its holder stops renewing
it, and a holder that lost its lease unable to extend or release the new holder's lock.

The HTTP tests (`tests/http/test_session_lock.py`) check the same behaviour end to end on one
Redis; this suite is what runs it on each flavour."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from graphs.errors import SessionLeaseLost
from graphs.memory.session_lock import HeldLock, RedisSessionLocks, kept
from graphs.store.keys import RedisKeys
from graphs.store.redis_client import RedisClient

PREFIX = "test-lock:"
LEASE = 1.0


@pytest.fixture
def session() -> str:
    return f"p:s-{uuid.uuid4().hex[:10]}"


def locks_of(redis: RedisClient, lease: float = 30.0) -> RedisSessionLocks:
    """One process's locks (each worker builds its own over the same Redis)."""
    return RedisSessionLocks(redis, PREFIX, lease_seconds=lease, fence_ttl=60)


async def fence_token(redis: RedisClient, session: str) -> int:
    return int(await redis.get(RedisKeys(PREFIX).session_fence(session)) or 0)


async def test_a_held_session_refuses_a_second_holder_until_it_is_released(
    redis: RedisClient, session: str
) -> None:
    mine, theirs = locks_of(redis), locks_of(redis)
    first = await mine.acquire(session, wait=0)
    assert first is not None
    assert await theirs.acquire(session, wait=0) is None
    other = await theirs.acquire(f"{session}-other", wait=0)
    assert other is not None  # another session is free
    await first.release()
    second = await theirs.acquire(session, wait=0)
    assert second is not None
    assert await fence_token(redis, session) == 2
    await second.release()
    await other.release()


async def test_a_waiter_takes_the_lock_once_the_holder_releases_it(
    redis: RedisClient, session: str
) -> None:
    holder = await locks_of(redis).acquire(session, wait=0)
    assert holder is not None
    waiter = asyncio.create_task(locks_of(redis).acquire(session, wait=10))
    done, _ = await asyncio.wait({waiter}, timeout=0.2)
    assert not done  # still waiting: the session is busy
    await holder.release()
    lease = await waiter
    assert lease is not None
    assert lease.fence is not None
    assert lease.fence[1].startswith("2:")
    await lease.release()


async def test_a_waiter_gives_up_once_its_wait_is_over(redis: RedisClient, session: str) -> None:
    holder = await locks_of(redis).acquire(session, wait=0)
    assert holder is not None
    started = time.monotonic()
    assert await locks_of(redis).acquire(session, wait=0.5) is None
    assert 0.5 <= time.monotonic() - started < 1.5
    await holder.release()


async def test_ten_holders_in_two_processes_never_hold_one_session_together(
    redis: RedisClient, session: str
) -> None:
    processes = [locks_of(redis), locks_of(redis)]
    holding: list[int] = []
    most = 0

    async def turn(index: int) -> int:
        nonlocal most
        lease = await processes[index % 2].acquire(session, wait=20)
        assert lease is not None
        holding.append(index)
        most = max(most, len(holding))
        await asyncio.sleep(0.02)
        holding.remove(index)
        assert lease.fence is not None
        token = int(lease.fence[1].split(":")[0])
        await lease.release()
        return token

    tokens = await asyncio.gather(*(turn(index) for index in range(10)))
    assert most == 1
    assert sorted(tokens) == list(range(1, 11))


async def test_an_unrenewed_lease_passes_the_lock_on_and_its_old_holder_cannot_keep_it(
    redis: RedisClient, session: str
) -> None:
    stalled = await locks_of(redis, LEASE).acquire(session, wait=0)
    assert stalled is not None
    started = time.monotonic()
    successor = await locks_of(redis, LEASE).acquire(session, wait=5)
    assert successor is not None
    assert LEASE - 0.1 <= time.monotonic() - started < LEASE + 1.0
    with pytest.raises(SessionLeaseLost):
        await stalled.confirm()
    await stalled.release()  # by its own id: the successor's lock stays
    assert await locks_of(redis).acquire(session, wait=0) is None
    assert successor.fence is not None
    assert await redis.get(successor.fence[0]) == successor.fence[1].encode()
    await successor.release()


async def test_a_held_lock_is_renewed_for_as_long_as_its_turn_runs(
    redis: RedisClient, session: str
) -> None:
    lease = await locks_of(redis, LEASE).acquire(session, wait=0)
    assert lease is not None
    async with kept(HeldLock(lease)):
        await asyncio.sleep(LEASE * 3)  # three leases: only renewal keeps it
        assert await locks_of(redis).acquire(session, wait=0) is None
    after = await locks_of(redis).acquire(session, wait=0)
    assert after is not None
    await after.release()
