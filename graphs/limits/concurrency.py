"""Slots for upstream calls: `MAX_CONCURRENCY` per process and, when set,
`GLOBAL_MAX_CONCURRENCY` across every worker and replica.

The global slots are leases in Redis sorted sets scored by expiry: taken and checked in one Lua
script on the server's clock, renewed while the call runs, removed when it ends, fails or is
cancelled, and reclaimed by expiry (`CONCURRENCY_LEASE_TTL`) when a worker dies holding one.
A waiter polls with jittered backoff, as redis-py's own lock does, until `QUEUE_TIMEOUT`.

The limit is split over `GLOBAL_CONCURRENCY_STRIPES` sets, each with its own hash tag, so on
Redis Cluster the slots live on several shards instead of pinning one. A caller tries the
stripes from a random one: the shares add up to the limit, and a caller that finds one stripe
full takes a slot from another, so the whole limit is used and never exceeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from graphs.errors import RETRY_BUSY_SECONDS, Unavailable
from graphs.store.keys import RedisKeys
from graphs.store.redis_client import REDIS_FAILURES, RedisClient

logger = logging.getLogger(__name__)

POLL_FIRST, POLL_MAX = 0.02, 0.2

# A lease already in the set (a retry whose first reply was lost) keeps its one slot.
ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[3]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return 1
end
return 0
"""

RENEW_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local renewed = redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[1]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return renewed
"""


@dataclass(frozen=True)
class Lease:
    """A held slot: the sorted set it is in and its member there."""

    key: str
    member: str


class LeasePool(Protocol):
    async def acquire(self, within: float) -> Lease | None: ...

    async def release(self, lease: Lease) -> None: ...

    async def renew(self, lease: Lease) -> None: ...

    async def in_use(self) -> int:
        """How many leases are held now, by every holder."""

    renew_every: float


def stripe_shares(limit: int, stripes: int) -> list[int]:
    """`limit` split over at most `stripes` stripes, as evenly as it goes (none empty)."""
    count = min(limit, stripes)
    return [limit // count + (index < limit % count) for index in range(count)]


class LocalLeasePool:
    """Embedded twin: one process is the whole cluster, so a semaphore is the global bound."""

    renew_every = 3600.0

    def __init__(self, limit: int) -> None:
        self._semaphore = asyncio.Semaphore(limit)
        self._held = 0

    async def acquire(self, within: float) -> Lease | None:
        try:
            async with asyncio.timeout(within):
                await self._semaphore.acquire()
        except TimeoutError:
            return None
        self._held += 1
        return Lease("local", "local")

    async def release(self, lease: Lease) -> None:
        self._held -= 1
        self._semaphore.release()

    async def renew(self, lease: Lease) -> None:
        return None

    async def in_use(self) -> int:
        return self._held


class RedisLeasePool:
    def __init__(
        self, redis: RedisClient, prefix: str, limit: int, ttl_seconds: float, stripes: int
    ) -> None:
        self._redis = redis
        self._stripes = [
            (RedisKeys(prefix).concurrency_stripe(index), share)
            for index, share in enumerate(stripe_shares(limit, stripes))
        ]
        self._ttl_ms = int(ttl_seconds * 1000)
        self.renew_every = ttl_seconds / 3
        self._acquire = redis.register_script(ACQUIRE_LUA)
        self._renew = redis.register_script(RENEW_LUA)
        # Who holds a lease is visible in Redis: host and pid, for operators and drills.
        self._owner = f"{socket.gethostname()}:{os.getpid()}"

    async def acquire(self, within: float) -> Lease | None:
        member = f"{self._owner}:{uuid.uuid4().hex}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        pause = POLL_FIRST
        while True:
            first = random.randrange(len(self._stripes))
            for key, share in self._stripes[first:] + self._stripes[:first]:
                if await self._try(Lease(key, member), share):
                    return Lease(key, member)
            left = deadline - loop.time()
            if left <= 0:
                return None
            await asyncio.sleep(min(left, pause * random.uniform(0.5, 1.5)))
            pause = min(POLL_MAX, pause * 1.5)

    async def _try(self, lease: Lease, share: int) -> bool:
        try:
            args: list[str | int] = [share, self._ttl_ms, lease.member]
            return bool(await self._acquire(keys=[lease.key], args=args))
        except BaseException:
            # Cancelled (or failed) with the script maybe applied: never strand the lease.
            with contextlib.suppress(*REDIS_FAILURES):
                await asyncio.shield(self.release(lease))
            raise

    async def release(self, lease: Lease) -> None:
        await self._redis.zrem(lease.key, lease.member)

    async def renew(self, lease: Lease) -> None:
        if not await self._renew(keys=[lease.key], args=[self._ttl_ms, lease.member]):
            logger.warning("concurrency lease %s expired before its call ended", lease.member)

    async def in_use(self) -> int:
        """Leases not lapsed, on this machine's clock (a view for people: off by the skew)."""
        now_ms = time.time() * 1000
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, _ in self._stripes:
                pipe.zcount(key, now_ms, "+inf")
            counts = await pipe.execute()
        return sum(int(count) for count in counts)


class ConcurrencySlots:
    """A slot of the process and, if configured, of the cluster, for one upstream call."""

    def __init__(self, per_process: int, leases: LeasePool | None, queue_timeout: float) -> None:
        self._semaphore = asyncio.Semaphore(per_process)
        self._leases = leases
        self._queue_timeout = queue_timeout
        self.held = 0  # this process's slots in use

    async def global_in_use(self) -> int | None:
        """The cluster-wide slots in use, when `GLOBAL_MAX_CONCURRENCY` is set."""
        return None if self._leases is None else await self._leases.in_use()

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._queue_timeout
        try:
            async with asyncio.timeout(self._queue_timeout):
                await self._semaphore.acquire()
        except TimeoutError:
            raise self._busy() from None
        self.held += 1
        try:
            if self._leases is None:
                yield
                return
            lease = await self._leases.acquire(max(0.0, deadline - loop.time()))
            if lease is None:
                raise self._busy()
            async with self._renewing(self._leases, lease):
                yield
        finally:
            self.held -= 1
            self._semaphore.release()

    @contextlib.asynccontextmanager
    async def _renewing(self, leases: LeasePool, lease: Lease) -> AsyncIterator[None]:
        async def keep_alive() -> None:
            while True:
                await asyncio.sleep(leases.renew_every)
                try:
                    await leases.renew(lease)
                except REDIS_FAILURES as exc:  # try again next time; the TTL is the bound
                    logger.warning("renewing lease %s failed: %s", lease.member, type(exc).__name__)

        renewer = asyncio.create_task(keep_alive())
        try:
            yield
        finally:
            renewer.cancel()
            # Release even when the call was cancelled; a failure here is healed by the TTL.
            with contextlib.suppress(*REDIS_FAILURES):
                await asyncio.shield(leases.release(lease))

    def _busy(self) -> Unavailable:
        return Unavailable(
            f"No upstream slot became free within QUEUE_TIMEOUT={self._queue_timeout:g} s.",
            retry_after=RETRY_BUSY_SECONDS,
        )
