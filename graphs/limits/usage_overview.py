"""Usage across every principal, per UTC day: what the operator console reads.

Summed as turns are recorded, beside each principal's own ledger (`graphs/limits/usage.py`), so
a view of any range costs a few reads per day however many principals and requests there were:
no per-request record exists, and nothing is scanned. A worker sums its turns in memory and
writes the sums at most every `USAGE_OVERVIEW_FLUSH_SECONDS`, in the end trip of the turn that
finds them due (and from its live reports, and before an admin's read): one script per day and
stripe for all its turns, where one per turn cost a turn 2-4% of its CPU (measured in
docs/performance.md). A worker killed loses its unwritten seconds here only: each principal's
own ledger, which `GET /usage` and a principal's view read, is written with its turn.

Per day, one hash of counters by model, by route and in total (`model:<name>|<counter>`,
`route:<name>|<counter>`, `total|<counter>`), and one sorted set per counter ranking the
principals, which Redis sums over a range itself (`ZUNION`).

On Redis Cluster the keys are striped: a principal's turns go to one of
`USAGE_OVERVIEW_STRIPES` sets of keys, each set under a hash tag of its own (so a write is one
script on one shard, and the stripes spread over the shards instead of loading one), and a
read sums the stripes. Raise the count, never lower it: a principal
whose stripe moves is summed across both, but a lowered count no longer reads the stripes
above it.
"""

from __future__ import annotations

import time
import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from graphs.limits.usage_counters import INCREMENT_LUA, TOTAL, counter_value
from graphs.store.keys import RedisKeys
from graphs.store.redis_client import RedisClient
from graphs.store.round_trip import RoundTrip, alone

Counters = dict[str, float]
MODEL, ROUTE = "model:", "route:"

# A worker's sums for one day and stripe: KEYS[1] the day's hash, KEYS[2..] rankings; ARGV[1]
# the retention (s), ARGV[2] how many field/value pairs of the hash follow, then those pairs;
# then, for each ranking in KEYS' order, how many member/increment pairs follow, then those.
FLUSH_LUA = (
    INCREMENT_LUA
    + """
local at = 3
for i = 1, tonumber(ARGV[2]) do
  increment(KEYS[1], ARGV[at], ARGV[at + 1])
  at = at + 2
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
for k = 2, #KEYS do
  local members = tonumber(ARGV[at])
  at = at + 1
  for i = 1, members do
    redis.call('ZINCRBY', KEYS[k], ARGV[at + 1], ARGV[at])
    at = at + 2
  end
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

    async def flush(self) -> None:
        """Write what this worker has summed and not written yet."""


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

    async def flush(self) -> None:
        return None


@dataclass
class Unwritten:
    """A day and stripe's sums not written yet: the hash's fields, and each ranking's
    increments by principal."""

    fields: dict[str, float] = field(default_factory=dict)
    ranks: dict[str, dict[str, float]] = field(default_factory=dict)


class RedisUsageOverview:
    """`counters`: every counter a turn may move, each with its ranking of principals."""

    def __init__(
        self,
        redis: RedisClient,
        keys: RedisKeys,
        retention_seconds: int,
        counters: Sequence[str],
        stripes: int = 1,
        flush_seconds: float = 5.0,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._retention = retention_seconds
        self._counters = tuple(counters)
        self._stripes = stripes
        self._flush_seconds = flush_seconds
        self._flush = redis.register_script(FLUSH_LUA)
        self._unwritten: dict[tuple[date, int], Unwritten] = {}
        self._written_at = time.monotonic()

    def record_in(self, trip: RoundTrip, day: date, turn: TurnUsage) -> None:
        """The turn summed in memory; the sums queued in `trip` when they are due."""
        moved = nonzero(turn.counters)
        unwritten = self._unwritten.setdefault(
            (day, stripe_of(turn.principal, self._stripes)), Unwritten()
        )
        summed(unwritten.fields, day_fields(turn.model, turn.route, moved))
        for name, value in moved.items():
            ranks = unwritten.ranks.setdefault(name, {})
            ranks[turn.principal] = ranks.get(turn.principal, 0) + value
        if time.monotonic() - self._written_at >= self._flush_seconds:
            self.flush_in(trip)

    def flush_in(self, trip: RoundTrip) -> None:
        """Queue every unwritten sum in `trip` (lost with it if it fails: logged, and each
        principal's own ledger holds the turns)."""
        unwritten, self._unwritten = self._unwritten, {}
        self._written_at = time.monotonic()
        for (day, stripe), sums in unwritten.items():
            keys = [self._keys.usage_overview(day, stripe)]
            args: list[str | int | float] = [self._retention, len(sums.fields)]
            args += [part for item in sums.fields.items() for part in item]
            for name, ranks in sums.ranks.items():
                keys.append(self._keys.usage_ranking(day, name, stripe))
                args += [len(ranks), *(part for item in ranks.items() for part in item)]
            trip.script(self._flush, keys, args)

    async def flush(self) -> None:
        if self._unwritten:
            await alone(self._redis, self.flush_in)

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
