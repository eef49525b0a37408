"""The usage ledger: tokens, cost and requests per principal per UTC day and model, per end user
(the `/v1` caller's own user) per day, and the tokens of the current minute, in Redis or in
memory; and, recorded with them, every principal's usage per day (`usage_overview.py`)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Protocol

from graphs.clock import SYSTEM_CLOCK, Clock
from graphs.limits.usage_counters import (
    COST,
    COUNTERS,
    INCREMENT_LUA,
    TOTAL,
    LedgerEntry,
    counter_value,
)
from graphs.limits.usage_overview import (
    InMemoryUsageOverview,
    RedisUsageOverview,
    TurnUsage,
    UsageOverview,
)
from graphs.store.keys import RedisKeys
from graphs.store.redis_client import RedisClient
from graphs.store.round_trip import RoundTrip, alone

SECONDS_PER_DAY = 86_400
DayUsage = dict[str, dict[str, float]]  # model (and "total") -> counter -> value
COST_FIELD = f"{TOTAL}|{COST}"


@dataclass(frozen=True)
class Spending:
    """What the budgets weigh: a principal's tokens this minute and spend today."""

    tokens_this_minute: int
    cost_today_usd: float


class UsageLedger(Protocol):
    @property
    def overview(self) -> UsageOverview:
        """Every principal's usage per day, recorded with each one's own."""

    async def record(
        self,
        principal: str,
        model: str,
        usage: LedgerEntry,
        end_user: str | None = None,
        *,
        route: str,
    ) -> None: ...

    def record_in(
        self,
        trip: RoundTrip,
        principal: str,
        model: str,
        usage: LedgerEntry,
        end_user: str | None = None,
        *,
        route: str,
    ) -> None:
        """`record`, queued in `trip` (a turn's end)."""

    async def days(self, principal: str, days: list[date]) -> dict[str, DayUsage]: ...

    async def end_user_days(
        self, principal: str, end_user: str, days: list[date]
    ) -> dict[str, dict[str, float]]:
        """One end user's counters (all models together) by day; days without any left out."""

    async def spending(self, principal: str) -> Spending: ...


def last_days(count: int, clock: Clock) -> list[date]:
    newest = clock.today()
    return [newest - timedelta(days=offset) for offset in range(count)]


class InMemoryUsageLedger:
    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self.overview = InMemoryUsageOverview()
        self._days: dict[tuple[str, date], DayUsage] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(float))
        )
        self._minutes: dict[tuple[str, int], int] = defaultdict(int)
        self._end_users: dict[tuple[str, date, str], dict[str, float]] = {}

    async def record(
        self,
        principal: str,
        model: str,
        usage: LedgerEntry,
        end_user: str | None = None,
        *,
        route: str,
    ) -> None:
        await alone(
            None, lambda trip: self.record_in(trip, principal, model, usage, end_user, route=route)
        )

    async def _record(
        self, principal: str, model: str, usage: LedgerEntry, end_user: str | None
    ) -> None:
        today = self._clock.today()
        day = self._days[(principal, today)]
        for counter, value in asdict(usage).items():
            day[model][counter] += value
            day[TOTAL][counter] += value
        if end_user is not None:
            counters = self._end_users.setdefault((principal, today, end_user), {})
            for counter, value in asdict(usage).items():
                counters[counter] = counters.get(counter, 0) + value
        minute = self._clock.minute()
        self._minutes[(principal, minute)] += usage.total_tokens
        for key in [k for k in self._minutes if k[1] < minute - 1]:
            del self._minutes[key]

    def record_in(
        self,
        trip: RoundTrip,
        principal: str,
        model: str,
        usage: LedgerEntry,
        end_user: str | None = None,
        *,
        route: str,
    ) -> None:
        trip.local(lambda: self._record(principal, model, usage, end_user))
        turn = TurnUsage(principal, model, route, asdict(usage))
        self.overview.record_in(trip, self._clock.today(), turn)

    async def days(self, principal: str, days: list[date]) -> dict[str, DayUsage]:
        return {
            day.isoformat(): {
                model: {name: counter_value(name, value) for name, value in counters.items()}
                for model, counters in self._days[(principal, day)].items()
            }
            for day in days
            if (principal, day) in self._days
        }

    async def end_user_days(
        self, principal: str, end_user: str, days: list[date]
    ) -> dict[str, dict[str, float]]:
        found = {day: self._end_users.get((principal, day, end_user)) for day in days}
        return {
            day.isoformat(): {c: counter_value(c, counters.get(c, 0)) for c in COUNTERS}
            for day, counters in found.items()
            if counters
        }

    async def spending(self, principal: str) -> Spending:
        today = self._days.get((principal, self._clock.today()), {})
        return Spending(
            self._minutes.get((principal, self._clock.minute()), 0),
            float(today[TOTAL]["cost_usd"]) if TOTAL in today else 0.0,
        )


# One turn's usage in one round trip, atomically: `model|counter` increments of the day's hash
# (the first ARGV[4] values of ARGV[5:], as field/value pairs; zero increments are not sent),
# then `end_user|counter` increments of the day's end-user hash (the rest), their retention,
# and the minute's token counter. KEYS share the principal's hash tag: one slot on a Cluster.
RECORD_LUA = (
    INCREMENT_LUA
    + """
local day, minute, end_users = KEYS[1], KEYS[2], KEYS[3]
local split = 4 + tonumber(ARGV[4])
for i = 5, #ARGV, 2 do
  local key = day
  if i > split then key = end_users end
  increment(key, ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', day, ARGV[1])
if #ARGV > split then
  redis.call('EXPIRE', end_users, ARGV[1])
end
redis.call('INCRBY', minute, ARGV[3])
redis.call('EXPIRE', minute, ARGV[2])
"""
)
MINUTE_KEY_TTL = 120


def increments(names: list[str], usage: LedgerEntry) -> list[str | int | float]:
    """A hash's field/value pairs of `usage` under each of `names` (`name|counter`), zeros left
    out (a missing counter reads as 0)."""
    return [
        part
        for counter, value in asdict(usage).items()
        if value
        for name in names
        for part in (f"{name}|{counter}", value)
    ]


class RedisUsageLedger:
    """A hash per principal and day (`model|counter` fields), kept `retention_days`; a counter
    per principal and minute for the token rate."""

    def __init__(
        self,
        redis: RedisClient,
        prefix: str,
        retention_days: int,
        clock: Clock = SYSTEM_CLOCK,
        overview_stripes: int = 1,
        overview_flush_seconds: float = 5.0,
    ) -> None:
        self._redis = redis
        self.clock = clock
        self._keys = RedisKeys(prefix)
        self._retention = retention_days * SECONDS_PER_DAY
        self._record = redis.register_script(RECORD_LUA)
        self.overview = RedisUsageOverview(
            redis, self._keys, self._retention, COUNTERS, overview_stripes, overview_flush_seconds
        )

    def day_key(self, principal: str, day: date | None = None) -> str:
        """The principal's usage hash of `day` (today unless given)."""
        day = day or self.clock.today()
        return self._keys.usage_day(principal, day)

    def end_users_key(self, principal: str, day: date | None = None) -> str:
        """The principal's end users' usage hash of `day` (today unless given)."""
        return self._keys.end_users_day(principal, day or self.clock.today())

    def minute_key(self, principal: str) -> str:
        """The principal's token counter of the current minute."""
        return self._keys.tokens_minute(principal, self.clock.minute())

    async def record(
        self,
        principal: str,
        model: str,
        usage: LedgerEntry,
        end_user: str | None = None,
        *,
        route: str,
    ) -> None:
        await alone(
            self._redis,
            lambda trip: self.record_in(trip, principal, model, usage, end_user, route=route),
        )

    def record_in(
        self,
        trip: RoundTrip,
        principal: str,
        model: str,
        usage: LedgerEntry,
        end_user: str | None = None,
        *,
        route: str,
    ) -> None:
        keys = [self.day_key(principal), self.minute_key(principal), self.end_users_key(principal)]
        by_model = increments([model, TOTAL], usage)
        by_end_user = increments([end_user], usage) if end_user is not None else []
        args = [self._retention, MINUTE_KEY_TTL, usage.total_tokens, len(by_model)]
        trip.script(self._record, keys, [*args, *by_model, *by_end_user])
        turn = TurnUsage(principal, model, route, asdict(usage))
        self.overview.record_in(trip, self.clock.today(), turn)

    async def days(self, principal: str, days: list[date]) -> dict[str, DayUsage]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hgetall(self.day_key(principal, day))
            hashes = await pipe.execute()
        result: dict[str, DayUsage] = {}
        for day, fields in zip(days, hashes, strict=True):
            if not fields:
                continue
            usage: DayUsage = defaultdict(lambda: {c: counter_value(c, 0) for c in COUNTERS})
            for field, value in fields.items():
                name, _, counter = field.decode().rpartition("|")
                usage[name][counter] = counter_value(counter, float(value))
            result[day.isoformat()] = dict(usage)
        return result

    async def end_user_days(
        self, principal: str, end_user: str, days: list[date]
    ) -> dict[str, dict[str, float]]:
        fields = [f"{end_user}|{counter}" for counter in COUNTERS]
        async with self._redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hmget(self.end_users_key(principal, day), fields)
            rows = await pipe.execute()
        return {
            day.isoformat(): {
                c: counter_value(c, float(v or 0)) for c, v in zip(COUNTERS, values, strict=True)
            }
            for day, values in zip(days, rows, strict=True)
            if any(values)
        }

    async def spending(self, principal: str) -> Spending:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(self.minute_key(principal))
            pipe.hget(self.day_key(principal), COST_FIELD)
            tokens, cost = await pipe.execute()
        return Spending(int(tokens or 0), float(cost or 0.0))
