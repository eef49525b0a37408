"""One turn at a time per session: a lock held from reading a session's history to writing it.

Without it, two turns of one session (two tabs, a retrying client) start from the same
checkpoint and the last writer wins: the other turn is acknowledged and lost. In Redis the lock
is a key holding a fencing token (from a per-session counter that lives as long as the session)
and its holder (`host:pid:uuid`: the uuid makes the value unique, the rest is for operators and
drills), with a lease (`SESSION_LOCK_LEASE`) renewed from the moment the lock is taken until
the turn ends, so a worker that dies holding it delays the session by at most the lease.
The turn's checkpoint is written by a script that first checks that the key still holds the
holder's token (`fence`, `graphs/memory/redis_saver.py`): a holder that lost its lease (a
pause longer than the lease) is refused rather than overwrite the turn of the one that took
over, and the check and the write are one step.
A waiter polls with jittered backoff, as redis-py's own lock does. In embedded mode one process
is the whole service, and an `asyncio.Lock` per session does the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Protocol

from graphs.errors import RETRY_BUSY_SECONDS, SessionBusy, SessionLeaseLost, SessionWaitExpired
from graphs.store.keys import RedisKeys
from graphs.store.redis_client import REDIS_FAILURES, RedisClient
from graphs.store.round_trip import Reply, RoundTrip, alone

logger = logging.getLogger(__name__)

POLL_FIRST, POLL_MAX = 0.01, 0.1

# Taken by this holder already (a retry whose first reply was lost): its token again.
ACQUIRE_LUA = """
local held = redis.call('GET', KEYS[1])
if held then
  if string.sub(held, -string.len(ARGV[1])) == ARGV[1] then
    return tonumber(string.match(held, '^(%d+):'))
  end
  return 0
end
local token = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[1], token .. ':' .. ARGV[1], 'PX', ARGV[2])
return token
"""

CONFIRM_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# By the holder's id, the end of the value: a waiter cancelled while its acquiring script ran
# does not know the token it may have been given.
RELEASE_LUA = """
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, -string.len(ARGV[1])) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def lease_lost() -> SessionLeaseLost:
    return SessionLeaseLost(
        "This turn's session lock expired and another turn took it; "
        "the turn was not stored. Send it again.",
        retry_after=RETRY_BUSY_SECONDS,
    )


class SessionLease(Protocol):
    """A held session lock; `fence` is its Redis key and value, which the checkpoint write
    checks (None for an in-process lock, which cannot be lost)."""

    renew_every: float

    @property
    def fence(self) -> tuple[str, str] | None: ...

    async def confirm(self) -> None:
        """Extend the lease, or `SessionLeaseLost` if another turn has taken the lock."""

    async def release(self) -> None: ...

    def release_in(self, trip: RoundTrip) -> None:
        """`release`, queued in `trip` (the turn's end)."""


class LockAttempt(Protocol):
    """One try for a session's lock, queued in a round trip."""

    def lease(self) -> SessionLease | None:
        """Once the trip is sent: the lock, or None if another turn holds it."""

    async def abandon(self) -> None:
        """The trip failed or was cancelled: let the lock go if it may have been taken."""


class SessionLocks(Protocol):
    async def is_held(self, thread_id: str) -> bool:
        """Whether a turn holds the session now (a thread's `busy` status)."""

    async def acquire(self, thread_id: str, wait: float) -> SessionLease | None:
        """The session's lock, waiting up to `wait` seconds; None if it stayed busy."""

    def attempt_in(self, trip: RoundTrip, thread_id: str) -> LockAttempt:
        """One try for the session's lock, queued in `trip` (a turn's admission)."""


class HeldLock:
    """A session lock held for one turn: its lease renewed from the moment it is taken (a
    batch's later turns may wait longer than the lease before they run) until it is let go."""

    def __init__(self, lease: SessionLease) -> None:
        self._lease = lease
        self._renewer = asyncio.create_task(self._renew())

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._lease.renew_every)
            try:
                await self._lease.confirm()
            except SessionLeaseLost:
                logger.warning("a session lock's lease expired while its turn ran")
                return
            except REDIS_FAILURES as exc:  # try again next time; the lease is the bound
                logger.warning("renewing a session lock failed: %s", type(exc).__name__)

    @property
    def fence(self) -> tuple[str, str] | None:
        return self._lease.fence

    async def let_go(self) -> None:
        """Release the lock even from a cancelled task; a failure is healed by the lease."""
        self._renewer.cancel()
        with contextlib.suppress(*REDIS_FAILURES):
            await asyncio.shield(self._lease.release())

    def let_go_in(self, trip: RoundTrip) -> None:
        """Release the lock in `trip`, after what the turn queued there; whoever sends the trip
        sends it shielded, and a failure is healed by the lease."""
        self._renewer.cancel()
        self._lease.release_in(trip)


@contextlib.asynccontextmanager
async def kept(held: HeldLock) -> AsyncIterator[None]:
    """Let `held` go however the block ends, cancellation included."""
    try:
        yield
    finally:
        await held.let_go()


async def let_go_all(held: list[HeldLock]) -> None:
    """Release several locks at once, shielded as one: a second cancellation cannot strand
    the ones not yet released."""
    if held:
        await asyncio.shield(asyncio.gather(*(lock.let_go() for lock in held)))


class RedisSessionLease:
    def __init__(self, locks: RedisSessionLocks, key: str, token: int, holder: str) -> None:
        self._locks = locks
        self._key = key
        self._holder = holder
        self._value = f"{token}{holder}"
        self.renew_every = locks.lease_ms / 3000
        self.fence = (key, self._value)

    async def confirm(self) -> None:
        args: list[str | int] = [self._value, self._locks.lease_ms]
        if not await self._locks.confirm_script(keys=[self._key], args=args):
            raise lease_lost()

    async def release(self) -> None:
        await alone(self._locks.redis, self.release_in)

    def release_in(self, trip: RoundTrip) -> None:
        trip.script(self._locks.release_script, [self._key], [self._holder])


class RedisSessionLocks:
    """Session locks across every worker and replica: `<prefix>session_lock:{<thread>}` and its
    token counter `<prefix>session_fence:{<thread>}`, one hash slot per session."""

    def __init__(
        self, redis: RedisClient, prefix: str, lease_seconds: float, fence_ttl: float
    ) -> None:
        self.redis = redis
        self._keys = RedisKeys(prefix)
        self.lease_ms = int(lease_seconds * 1000)
        self._fence_ttl_ms = int(fence_ttl * 1000)
        self._acquire = redis.register_script(ACQUIRE_LUA)
        self.confirm_script = redis.register_script(CONFIRM_LUA)
        self.release_script = redis.register_script(RELEASE_LUA)
        self._owner = f"{socket.gethostname()}:{os.getpid()}"

    def lock_key(self, thread_id: str) -> str:
        return self._keys.session_lock(thread_id)

    async def is_held(self, thread_id: str) -> bool:
        return bool(await self.redis.exists(self.lock_key(thread_id)))

    def attempt_in(self, trip: RoundTrip, thread_id: str) -> RedisLockAttempt:
        key = self.lock_key(thread_id)
        holder = f"{self._owner}:{uuid.uuid4().hex}"
        keys = [key, self._keys.session_fence(thread_id)]
        args: list[str | int] = [holder, self.lease_ms, self._fence_ttl_ms]
        return RedisLockAttempt(self, key, ":" + holder, trip.script(self._acquire, keys, args))

    async def acquire(self, thread_id: str, wait: float) -> SessionLease | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        pause = POLL_FIRST
        while True:
            trip = RoundTrip(self.redis)
            attempt = self.attempt_in(trip, thread_id)
            try:
                await trip.send()
            except BaseException:
                await attempt.abandon()
                raise
            lease = attempt.lease()
            if lease is not None:
                return lease
            left = deadline - loop.time()
            if left <= 0:
                return None
            await asyncio.sleep(min(left, pause * random.uniform(0.5, 1.5)))
            pause = min(POLL_MAX, pause * 1.5)


class RedisLockAttempt:
    def __init__(self, locks: RedisSessionLocks, key: str, holder: str, token: Reply[int]) -> None:
        self._locks = locks
        self._key = key
        self._holder = holder
        self._token = token

    def lease(self) -> SessionLease | None:
        token = self._token.value
        return RedisSessionLease(self._locks, self._key, token, self._holder) if token else None

    async def abandon(self) -> None:
        # Cancelled (or failed) with the script maybe applied: never strand the lock.
        with contextlib.suppress(*REDIS_FAILURES):
            release = self._locks.release_script(keys=[self._key], args=[self._holder])
            await asyncio.shield(release)


class LocalSessionLease:
    renew_every = 3600.0
    fence = None

    def __init__(self, locks: LocalSessionLocks, thread_id: str) -> None:
        self._locks = locks
        self._thread_id = thread_id
        self._released = False

    async def confirm(self) -> None:
        return None  # an in-process lock has no lease to lose

    async def release(self) -> None:
        if not self._released:
            self._released = True
            self._locks.release(self._thread_id)

    def release_in(self, trip: RoundTrip) -> None:
        trip.local(self.release)


class LocalSessionLocks:
    """Embedded twin: an `asyncio.Lock` per session, dropped when nobody holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    async def acquire(self, thread_id: str, wait: float) -> SessionLease | None:
        lock = self._locks.setdefault(thread_id, asyncio.Lock())
        self._users[thread_id] = self._users.get(thread_id, 0) + 1
        try:
            if wait <= 0 and lock.locked():
                raise TimeoutError
            # timeout(0): take it if it is free now (no waiter ahead), else give up at once.
            async with asyncio.timeout(max(0.0, wait)):
                await lock.acquire()
        except TimeoutError:
            self._forget(thread_id)
            return None
        except BaseException:
            self._forget(thread_id)
            raise
        return LocalSessionLease(self, thread_id)

    async def is_held(self, thread_id: str) -> bool:
        lock = self._locks.get(thread_id)
        return lock is not None and lock.locked()

    def attempt_in(self, trip: RoundTrip, thread_id: str) -> LocalLockAttempt:
        return LocalLockAttempt(trip.local(lambda: self.acquire(thread_id, 0.0)))

    def release(self, thread_id: str) -> None:
        self._locks[thread_id].release()
        self._forget(thread_id)

    def _forget(self, thread_id: str) -> None:
        self._users[thread_id] -= 1
        if not self._users[thread_id]:
            del self._users[thread_id]
            del self._locks[thread_id]


class LocalLockAttempt:
    def __init__(self, lease: Reply[SessionLease | None]) -> None:
        self._lease = lease

    def lease(self) -> SessionLease | None:
        return self._lease.value

    async def abandon(self) -> None:
        if self._lease.sent and (lease := self._lease.value) is not None:
            await lease.release()


async def take_session_lock(
    locks: SessionLocks, thread_id: str, conflict: str, wait: float
) -> HeldLock:
    """The session's lock for one turn: with `conflict` `enqueue` wait up to `wait` seconds
    (then 503), with `reject` not at all (409); both `session_busy`. `conflict` is
    `SESSION_CONFLICT`, or a LangGraph API run's `multitask_strategy`."""
    lease = await locks.acquire(thread_id, wait if conflict == "enqueue" else 0.0)
    if lease is not None:
        return HeldLock(lease)
    if conflict == "enqueue":
        raise SessionWaitExpired(
            "Earlier turns of this session kept it busy for all of QUEUE_TIMEOUT; "
            "send the turn again.",
            retry_after=RETRY_BUSY_SECONDS,
        )
    raise SessionBusy(
        "Another turn of this session (a run of this thread) is running, and this one asked "
        "not to wait (reject); send it when the other has finished.",
        retry_after=RETRY_BUSY_SECONDS,
    )
