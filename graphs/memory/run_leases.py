"""Who runs each LangGraph API background run, so that none dies with its worker.

A background run is owned by the worker that runs it under a lease in Redis: one sorted set of
every run's lease (the score is when it lapses) and one hash of their owners, in one slot. The
owner renews the lease every third of `RUN_LEASE`; a worker that dies stops renewing, and
another worker, which looks for lapsed leases as often, claims the run (the claim is one
script: no two workers take the same run) and finishes it from its thread's last checkpoint
(`api/langgraph/run_takeover.py`). A principal's background runs that have not ended are a set
of their own, which bounds how many run at once (`BACKGROUND_RUNS_MAX`).

Every write to the leases refreshes both keys' TTL, so an idle service leaves none behind: at
least `SESSION_TTL` (a lapsed run stays claimable as long as its thread's records live, even
after every worker was down) and never under three leases (a live run's owner renews every
third of one, and a dead owner's run is claimed within a lease and a third).

In embedded mode one process is the whole service: a run cannot outlive it, and nothing is
ever taken over; the in-memory twin only counts.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from typing import Any, Protocol

from redis.commands.core import AsyncScript

from graphs.store.keys import RedisKeys
from graphs.store.redis_client import RedisClient

# One more of the principal's background runs, unless it has `limit` already.
ADMIT_LUA = """
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""

# The lease scripts' last argument is both keys' TTL, which each write refreshes.
REFRESH_TTL = """
redis.call('EXPIRE', KEYS[1], ARGV[#ARGV])
redis.call('EXPIRE', KEYS[2], ARGV[#ARGV])
"""

TAKE_LUA = f"""
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
{REFRESH_TTL}
"""

RENEW_LUA = f"""
if redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[2] then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  {REFRESH_TTL}
  return 1
end
return 0
"""

# The first run whose lease has lapsed, now this owner's.
CLAIM_LUA = f"""
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)
if #lapsed == 0 then
  return false
end
redis.call('ZADD', KEYS[1], ARGV[3], lapsed[1])
redis.call('HSET', KEYS[2], lapsed[1], ARGV[2])
{REFRESH_TTL}
return lapsed[1]
"""

# The owner lets the run go: ended (`ARGV[3]` = 0: forgotten), or handed back (its lease lapses
# now, for another worker to claim).
RELEASE_LUA = f"""
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then
  return 0
end
if ARGV[3] == '0' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[1], 0, ARGV[1])
end
{REFRESH_TTL}
return 1
"""


def member(principal: str, run_id: str) -> str:
    return json.dumps([principal, run_id], separators=(",", ":"))


def lease_keys_ttl(session_ttl: int, lease_seconds: float) -> int:
    """The lease keys' TTL: `SESSION_TTL`, and never under three leases (see above)."""
    return max(session_ttl, math.ceil(lease_seconds * 3))


class RunLeases(Protocol):
    async def admit(self, principal: str, run_id: str, limit: int) -> bool:
        """Count a new background run of the principal; False if `limit` run already."""

    async def take(self, principal: str, run_id: str, owner: str) -> None:
        """Own a new run's lease."""

    async def renew(self, principal: str, run_id: str, owner: str) -> bool:
        """Extend the lease; False if another owner has claimed the run."""

    async def claim_lapsed(self, owner: str) -> tuple[str, str] | None:
        """A run whose owner stopped renewing (principal, run id), now `owner`'s."""

    async def end(self, principal: str, run_id: str, owner: str) -> None:
        """The run has ended: its lease and its place among the principal's runs go."""

    async def hand_back(self, principal: str, run_id: str, owner: str) -> None:
        """The owner stops (a draining worker): the run is free to claim at once."""


class RedisRunLeases:
    def __init__(self, redis: RedisClient, prefix: str, lease_seconds: float, ttl: int) -> None:
        self._redis = redis
        self._keys = RedisKeys(prefix)
        self._lease_ms = int(lease_seconds * 1000)
        self._ttl = ttl
        self._lease_keys_ttl = lease_keys_ttl(ttl, lease_seconds)
        self._admit = redis.register_script(ADMIT_LUA)
        self._take = redis.register_script(TAKE_LUA)
        self._renew = redis.register_script(RENEW_LUA)
        self._claim = redis.register_script(CLAIM_LUA)
        self._release = redis.register_script(RELEASE_LUA)

    @property
    def _lease_keys(self) -> list[str]:
        return [self._keys.run_leases(), self._keys.run_owners()]

    def _lapses(self) -> int:
        return int(time.time() * 1000) + self._lease_ms

    async def admit(self, principal: str, run_id: str, limit: int) -> bool:
        key = self._keys.background_runs(principal)
        return bool(await self._admit(keys=[key], args=[run_id, limit, self._ttl]))

    async def _write_leases(self, script: AsyncScript, *args: str | int) -> Any:
        """Run a lease script on both keys, with their TTL as its last argument."""
        return await script(keys=self._lease_keys, args=[*args, self._lease_keys_ttl])

    async def take(self, principal: str, run_id: str, owner: str) -> None:
        await self._write_leases(self._take, member(principal, run_id), owner, self._lapses())

    async def renew(self, principal: str, run_id: str, owner: str) -> bool:
        renewed = member(principal, run_id), owner, self._lapses()
        return bool(await self._write_leases(self._renew, *renewed))

    async def claim_lapsed(self, owner: str) -> tuple[str, str] | None:
        now = int(time.time() * 1000)
        claimed = await self._write_leases(self._claim, now, owner, self._lapses())
        if not claimed:
            return None
        principal, run_id = json.loads(claimed)
        return str(principal), str(run_id)

    async def end(self, principal: str, run_id: str, owner: str) -> None:
        await self._write_leases(self._release, member(principal, run_id), owner, 0)
        await self._redis.srem(self._keys.background_runs(principal), run_id)

    async def hand_back(self, principal: str, run_id: str, owner: str) -> None:
        await self._write_leases(self._release, member(principal, run_id), owner, 1)


class MemoryRunLeases:
    """Embedded twin: one process runs every run; it only counts each principal's."""

    def __init__(self) -> None:
        self._running: dict[str, set[str]] = defaultdict(set)

    async def admit(self, principal: str, run_id: str, limit: int) -> bool:
        if len(self._running[principal]) >= limit:
            return False
        self._running[principal].add(run_id)
        return True

    async def take(self, principal: str, run_id: str, owner: str) -> None:
        return None

    async def renew(self, principal: str, run_id: str, owner: str) -> bool:
        return True

    async def claim_lapsed(self, owner: str) -> tuple[str, str] | None:
        return None

    async def end(self, principal: str, run_id: str, owner: str) -> None:
        self._running[principal].discard(run_id)
        if not self._running[principal]:
            del self._running[principal]

    async def hand_back(self, principal: str, run_id: str, owner: str) -> None:
        return None


def build_run_leases(
    redis: RedisClient | None, prefix: str, lease_seconds: float, ttl: int
) -> RunLeases:
    if redis is None:
        return MemoryRunLeases()
    return RedisRunLeases(redis, prefix, lease_seconds, ttl)
