"""The embedded session lock: one holder per session, waiters in line, nothing left behind."""

from __future__ import annotations

import asyncio

import pytest

from graphs.errors import SessionBusy, SessionWaitExpired
from graphs.memory.session_lock import LocalSessionLocks, kept, take_session_lock


async def test_a_held_session_refuses_at_once_and_frees_when_released() -> None:
    locks = LocalSessionLocks()
    first = await locks.acquire("p:s", wait=0)
    assert first is not None
    assert await locks.acquire("p:s", wait=0) is None
    assert await locks.acquire("p:other", wait=0) is not None  # another session is free
    await first.release()
    assert await locks.acquire("p:s", wait=0) is not None


async def test_a_waiter_gets_the_lock_when_the_holder_lets_go() -> None:
    locks = LocalSessionLocks()
    first = await take_session_lock(locks, "p:s", "enqueue", 0)
    waiter = asyncio.create_task(locks.acquire("p:s", wait=5))
    await asyncio.sleep(0)
    assert locks._users["p:s"] == 2
    assert not waiter.done()
    async with kept(first):
        pass  # leaving the block releases the lock
    assert await waiter is not None


async def test_reject_never_waits_even_for_a_lock_about_to_be_handed_on() -> None:
    locks = LocalSessionLocks()
    holder = await locks.acquire("p:s", wait=0)
    assert holder is not None
    waiter = asyncio.create_task(locks.acquire("p:s", wait=5))
    await asyncio.sleep(0)
    await holder.release()  # free, with a waiter ahead: not for a caller who will not wait
    assert await asyncio.wait_for(locks.acquire("p:s", wait=0), 1) is None
    assert await waiter is not None


async def test_take_turn_says_session_busy_with_409_or_503_by_policy() -> None:
    locks = LocalSessionLocks()
    holder = await take_session_lock(locks, "p:s", "enqueue", 1)
    with pytest.raises(SessionBusy) as refused:
        await take_session_lock(locks, "p:s", "reject", 1)
    assert (refused.value.status, refused.value.code) == (409, "session_busy")
    with pytest.raises(SessionWaitExpired) as expired:
        await take_session_lock(locks, "p:s", "enqueue", 0.05)
    assert (expired.value.status, expired.value.code) == (503, "session_busy")
    assert expired.value.headers() == {"Retry-After": "1"}
    await holder.let_go()


async def test_nothing_is_left_behind_by_holders_or_cancelled_waiters() -> None:
    locks = LocalSessionLocks()
    holder = await locks.acquire("p:s", wait=0)
    assert holder is not None
    waiter = asyncio.create_task(locks.acquire("p:s", wait=5))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await holder.release()
    await holder.release()  # twice is once
    assert not locks._locks
