"""Usage across every principal, per UTC day: what the operator console reads.

Kept as turns are recorded, beside each principal's own ledger (`graphs/limits/usage.py`), so a
view of any range costs a few reads per day however many principals and requests there were:
no per-request record exists, and nothing is scanned. Per day, one hash of counters by model,
by route and in total (`model:<name>|<counter>`, `route:<name>|<counter>`, `total|<counter>`),
and one sorted set per counter ranking the principals, which Redis sums over a range itself
(`ZUNION`).

On Redis Cluster the keys are striped: a principal's turns go to one of
`USAGE_OVERVIEW_STRIPES` sets of keys, each set under a hash tag of its own (so a turn's share
is one script on one shard, and the stripes spread over the shards instead of loading one
with every turn), and a read sums the stripes. Raise the count, never lower it: a principal
whose stripe moves is summed across both, but a lowered count no longer reads the stripes
above it.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from graphs.limits.usage_counters import INCREMENT_LUA, TOTAL, counter_value
from graphs.store.keys import RedisKeys
from graphs.store.redis_client import RedisClient
from graphs.store.round_trip import RoundTrip

Counters = dict[str, float]
MODEL, ROUTE = "model:", "route:"

# A turn's share of its day: KEYS[1] the day's hash, KEYS[2..] the rankings of the counters it
# moved; ARGV[1] the retention (s), ARGV[2] the principal, ARGV[3] how many field/value pairs
# of the hash follow, then those pairs, then each ranking's increment in KEYS' order.
RECORD_LUA = (
    INCREMENT_LUA
    + """
local pairs_end = 3 + 2 * tonumber(ARGV[3])
for i = 4, pairs_end, 2 do
  increment(KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
for k = 2, #KEYS do
  redis.call('ZINCRBY', KEYS[k], ARGV[pairs_end + k - 1], ARGV[2])
  redis.call('EXPIRE', KEYS[k], ARGV[1])
end
"""
)


@dataclass(frozen=True)
class TurnUsage:
    """What one turn adds: its principal, the model that answered, its route, its counters."""

    principal: str
    model: str
    route: str
    counters: dict[str, float]


@dataclass(frozen=True)
class DayOverview:
    """One day's counters in total, by model and by route."""

    total: Counters = field(default_factory=dict)
    models: dict[str, Counters] = field(default_factory=dict)
    routes: dict[str, Counters] = field(default_factory=dict)


def nonzero(counters: dict[str, float]) -> dict[str, float]:
    return {name: value for name, value in counters.items() if value}


def overview_of(fields: dict[str, float]) -> DayOverview:
    """A day's hash (`<name>|<counter>` fields) as a `DayOverview`."""
    day = DayOverview()
    for name, value in fields.items():
        owner, _, counter = name.rpartition("|")
        if owner == TOTAL:
            target = day.total
        elif owner.startswith(MODEL):
            target = day.models.setdefault(owner[len(MODEL) :], {})
        elif owner.startswith(ROUTE):
            target = day.routes.setdefault(owner[len(ROUTE) :], {})
        else:
            continue
        target[counter] = counter_value(counter, value)
    return day


def day_fields(model: str, route: str, counters: dict[str, float]) -> dict[str, float]:
    """What one turn adds to its day's hash."""
    owners = (TOTAL, f"{MODEL}{model}", f"{ROUTE}{route}")
    return {f"{owner}|{name}": value for name, value in counters.items() for owner in owners}


def stripe_of(principal: str, stripes: int) -> int:
    """The stripe of a principal's turns: the same in every process (not Python's `hash`)."""
    return zlib.crc32(principal.encode()) % stripes


def summed(into: dict[str, float], more: dict[str, float]) -> None:
    for name, value in more.items():
        into[name] = into.get(name, 0) + value


class UsageOverview(Protocol):
    def record_in(self, trip: RoundTrip, day: date, turn: TurnUsage) -> None:
        """A turn's counters, queued in `trip`."""

    async def days(self, days: list[date]) -> dict[str, DayOverview]:
        """Each of `days` that had usage, by ISO date."""

    async def principals(self, days: list[date]) -> dict[str, Counters]:
        """Every principal's counters summed over `days`."""


class InMemoryUsageOverview:
    def __init__(self) -> None:
        self._days: dict[date, dict[str, float]] = defaultdict(dict)
        self._ranks: dict[date, dict[str, Counters]] = defaultdict(dict)

    def record_in(self, trip: RoundTrip, day: date, turn: TurnUsage) -> None:
        trip.local(lambda: self._record(day, turn))

    async def _record(self, day: date, turn: TurnUsage) -> None:
        moved = nonzero(turn.counters)
        summed(self._days[day], day_fields(turn.model, turn.route, moved))
        summed(self._ranks[day].setdefault(turn.principal, {}), moved)

    async def days(self, days: list[date]) -> dict[str, DayOverview]:
        return {day.isoformat(): overview_of(self._days[day]) for day in days if day in self._days}

    async def principals(self, days: list[date]) -> dict[str, Counters]:
        found: dict[str, Counters] = defaultdict(dict)
        for day in days:
            for principal, counters in self._ranks.get(day, {}).items():
                summed(found[principal], counters)
        return {p: {n: counter_value(n, v) for n, v in c.items()} for p, c in found.items()}


class RedisUsageOverview:
    """`counters`: every counter a turn may move, each with its ranking of principals."""

    def __init__(
        self,
        redis: RedisClient,
        keys: RedisKeys,
        retention_seconds: int,
        counters: Sequence[str],
        stripes: int = 1,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._retention = retention_seconds
        self._counters = tuple(counters)
        self._stripes = stripes
        self._record = redis.register_script(RECORD_LUA)

    def record_in(self, trip: RoundTrip, day: date, turn: TurnUsage) -> None:
        stripe = stripe_of(turn.principal, self._stripes)
        moved = nonzero(turn.counters)
        fields = day_fields(turn.model, turn.route, moved)
        keys = [self._keys.usage_overview(day, stripe)]
        keys += [self._keys.usage_ranking(day, name, stripe) for name in moved]
        pairs = [part for item in fields.items() for part in item]
        args = [self._retention, turn.principal, len(fields), *pairs, *moved.values()]
        trip.script(self._record, keys, args)

    async def days(self, days: list[date]) -> dict[str, DayOverview]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for day in days:
                for stripe in range(self._stripes):
                    pipe.hgetall(self._keys.usage_overview(day, stripe))
            hashes = iter(await pipe.execute())
        found: dict[str, DayOverview] = {}
        for day in days:
            fields: dict[str, float] = {}
            for _ in range(self._stripes):
                summed(fields, {k.decode(): float(v) for k, v in next(hashes).items()})
            if fields:
                found[day.isoformat()] = overview_of(fields)
        return found

    async def principals(self, days: list[date]) -> dict[str, Counters]:
        if not days:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in self._counters:
                for stripe in range(self._stripes):
                    pipe.zunion(
                        [self._keys.usage_ranking(d, name, stripe) for d in days], withscores=True
                    )
            ranked = iter(await pipe.execute())
        found: dict[str, Counters] = defaultdict(dict)
        for name in self._counters:
            for _ in range(self._stripes):
                for member, score in next(ranked):
                    summed(found[member.decode()], {name: score})
        return {p: {n: counter_value(n, v) for n, v in c.items()} for p, c in found.items()}
