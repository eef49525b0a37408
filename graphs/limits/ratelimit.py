"""Per-principal sliding-window request limit, in Redis (one atomic round trip) or in memory.

Both stores apply the same rule, `decide`: a request of `cost` is admitted when the requests
seen in the last `window` seconds plus `cost` stay within `limit`; otherwise it may retry when
enough of the oldest requests have left the window. Units counted for a request that was then
refused before it ran are given back (`refund`).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from graphs.clock import SYSTEM_CLOCK, Clock
from graphs.store.keys import RedisKeys
from graphs.store.redis_client import RedisClient
from graphs.store.round_trip import Reply, RoundTrip, alone


@dataclass(frozen=True)
class RateLimitDecision:
    allowed: bool
    limit: int
    remaining: int
    retry_after: float
    hit: str | None = None  # names the units an admitted request counted, for `refund`


class RateLimiter(Protocol):
    limit: int

    async def hit(
        self, principal: str, cost: int = 1, limit: int | None = None
    ) -> RateLimitDecision: ...

    def hit_in(
        self, trip: RoundTrip, principal: str, cost: int = 1, limit: int | None = None
    ) -> Reply[RateLimitDecision]:
        """`hit`, queued in `trip` (a turn's admission)."""

    async def refund(self, principal: str, hit: str, units: range) -> None:
        """Give back units `units` (1-based) of the request counted as `hit`."""

    async def in_window(self, principals: list[str]) -> dict[str, int]:
        """How many requests each principal has in its window now."""


def decide(
    recent: Sequence[float], now: float, *, limit: int, window: float, cost: int
) -> RateLimitDecision:
    """The decision for a request of `cost` given the sorted times of requests in the window."""
    count = len(recent)
    if count + cost <= limit:
        return RateLimitDecision(True, limit, limit - count - cost, 0.0)
    must_leave = count + cost - limit
    # When cost exceeds the whole limit no wait helps; a full window is the honest answer.
    retry_after = window if must_leave > count else max(0.0, recent[must_leave - 1] + window - now)
    return RateLimitDecision(False, limit, max(0, limit - count), retry_after)


class InMemoryRateLimiter:
    """The embedded-mode limiter: one process, monotonic clock."""

    def __init__(self, limit: int, window: float, clock: Clock = SYSTEM_CLOCK) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}

    async def hit(
        self, principal: str, cost: int = 1, limit: int | None = None
    ) -> RateLimitDecision:
        now = self._clock.monotonic()
        seen = self._seen.setdefault(principal, deque())
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        decision = decide(seen, now, limit=limit or self.limit, window=self.window, cost=cost)
        if decision.allowed:
            seen.extend([now] * cost)
            decision = dataclasses.replace(decision, hit=repr(now))
        if not seen:
            del self._seen[principal]
        return decision

    def hit_in(
        self, trip: RoundTrip, principal: str, cost: int = 1, limit: int | None = None
    ) -> Reply[RateLimitDecision]:
        return trip.local(lambda: self.hit(principal, cost, limit))

    async def in_window(self, principals: list[str]) -> dict[str, int]:
        now = self._clock.monotonic()
        return {
            p: sum(1 for at in self._seen.get(p, ()) if at > now - self.window) for p in principals
        }

    async def refund(self, principal: str, hit: str, units: range) -> None:
        # The units of one hit share its time: any of them is as good as another.
        seen = self._seen.get(principal)
        at = float(hit)
        for _ in units:
            if seen is None or at not in seen:
                return
            seen.remove(at)


# `decide` in Lua, on the server's clock so that every replica agrees on the window.
SLIDING_WINDOW_LUA = """
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count + cost <= limit then
  for i = 1, cost do
    redis.call('ZADD', key, now, ARGV[4] .. ':' .. i)
  end
  redis.call('PEXPIRE', key, window)
  return {1, limit - count - cost, 0}
end
local must_leave = count + cost - limit
local retry = window
if must_leave <= count then
  local entry = redis.call('ZRANGE', key, must_leave - 1, must_leave - 1, 'WITHSCORES')
  retry = math.max(0, tonumber(entry[2]) + window - now)
end
return {0, math.max(0, limit - count), retry}
"""


class RedisRateLimiter:
    """The production limiter: a sorted set per principal, shared by every worker and replica."""

    def __init__(self, redis: RedisClient, prefix: str, limit: int, window: float) -> None:
        self.limit = limit
        self.window_ms = int(window * 1000)
        self._keys = RedisKeys(prefix)
        self._redis = redis
        self._script = redis.register_script(SLIDING_WINDOW_LUA)

    def _key(self, principal: str) -> str:
        return self._keys.rate_limit(principal)

    async def hit(
        self, principal: str, cost: int = 1, limit: int | None = None
    ) -> RateLimitDecision:
        return (
            await alone(self._redis, lambda trip: self.hit_in(trip, principal, cost, limit))
        ).value

    def hit_in(
        self, trip: RoundTrip, principal: str, cost: int = 1, limit: int | None = None
    ) -> Reply[RateLimitDecision]:
        limit = limit or self.limit
        hit = uuid.uuid4().hex

        def decision(reply: list[int]) -> RateLimitDecision:
            allowed, remaining, retry_ms = reply
            return RateLimitDecision(
                bool(allowed), limit, int(remaining), int(retry_ms) / 1000, hit if allowed else None
            )

        args = [limit, self.window_ms, cost, hit]
        return trip.script(self._script, [self._key(principal)], args, decision)

    async def in_window(self, principals: list[str]) -> dict[str, int]:
        """Read on this machine's clock (the window is kept on the server's): a view for people,
        off by the clocks' skew at most."""
        since = time.time() * 1000 - self.window_ms
        async with self._redis.pipeline(transaction=False) as pipe:
            for principal in principals:
                pipe.zcount(self._key(principal), since, "+inf")
            counts = await pipe.execute()
        return dict(zip(principals, map(int, counts), strict=True))

    async def refund(self, principal: str, hit: str, units: range) -> None:
        if units:
            await self._redis.zrem(self._key(principal), *(f"{hit}:{unit}" for unit in units))
