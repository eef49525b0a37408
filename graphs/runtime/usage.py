"""The usage ledger: tokens, cost and requests per principal per UTC day and model, and the
tokens of the current minute, in Redis or in memory."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Protocol

from redis.asyncio import Redis

from graphs.runtime.clock import SYSTEM_CLOCK, Clock

SECONDS_PER_DAY = 86_400
TOTAL = "total"


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    requests: int = 1
    cache_hits: int = 0
    partial_requests: int = 0  # turns cut short (failed, timed out, client gone)
    partial_tokens: int = 0  # their tokens, also in the totals above


DayUsage = dict[str, dict[str, float]]  # model (and "total") -> counter -> value


def counter_value(counter: str, value: float) -> float:
    """Counts as integers, the cost as a float."""
    return float(value) if counter == "cost_usd" else int(value)


class UsageLedger(Protocol):
    async def record(self, principal: str, model: str, usage: Usage) -> None: ...

    async def days(self, principal: str, days: list[date]) -> dict[str, DayUsage]: ...

    async def tokens_this_minute(self, principal: str) -> int: ...


def last_days(count: int, clock: Clock) -> list[date]:
    newest = clock.today()
    return [newest - timedelta(days=offset) for offset in range(count)]


class InMemoryUsageLedger:
    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._days: dict[tuple[str, date], DayUsage] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(float))
        )
        self._minutes: dict[tuple[str, int], int] = defaultdict(int)

    async def record(self, principal: str, model: str, usage: Usage) -> None:
        day = self._days[(principal, self._clock.today())]
        for counter, value in asdict(usage).items():
            day[model][counter] += value
            day[TOTAL][counter] += value
        minute = self._clock.minute()
        self._minutes[(principal, minute)] += usage.total_tokens
        for key in [k for k in self._minutes if k[1] < minute - 1]:
            del self._minutes[key]

    async def days(self, principal: str, days: list[date]) -> dict[str, DayUsage]:
        return {
            day.isoformat(): {
                model: {name: counter_value(name, value) for name, value in counters.items()}
                for model, counters in self._days[(principal, day)].items()
            }
            for day in days
            if (principal, day) in self._days
        }

    async def tokens_this_minute(self, principal: str) -> int:
        return self._minutes.get((principal, self._clock.minute()), 0)


class RedisUsageLedger:
    """A hash per principal and day (`model|counter` fields), kept `retention_days`; a counter
    per principal and minute for the token rate."""

    def __init__(
        self, redis: Redis, prefix: str, retention_days: int, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._prefix = prefix
        self._retention = retention_days * SECONDS_PER_DAY

    def _day_key(self, principal: str, day: date) -> str:
        return f"{self._prefix}usage:{{{principal}}}:{day.isoformat()}"

    def _minute_key(self, principal: str, minute: int) -> str:
        return f"{self._prefix}tpm:{{{principal}}}:{minute}"

    async def record(self, principal: str, model: str, usage: Usage) -> None:
        day_key = self._day_key(principal, self._clock.today())
        minute_key = self._minute_key(principal, self._clock.minute())
        async with self._redis.pipeline(transaction=True) as pipe:
            for counter, value in asdict(usage).items():
                for name in (model, TOTAL):
                    field = f"{name}|{counter}"
                    if isinstance(value, float):
                        pipe.hincrbyfloat(day_key, field, value)
                    else:
                        pipe.hincrby(day_key, field, value)
            pipe.expire(day_key, self._retention)
            pipe.incrby(minute_key, usage.total_tokens)
            pipe.expire(minute_key, 120)
            await pipe.execute()

    async def days(self, principal: str, days: list[date]) -> dict[str, DayUsage]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hgetall(self._day_key(principal, day))
            hashes = await pipe.execute()
        result: dict[str, DayUsage] = {}
        for day, fields in zip(days, hashes, strict=True):
            if not fields:
                continue
            usage: DayUsage = defaultdict(dict)
            for field, value in fields.items():
                name, _, counter = field.decode().rpartition("|")
                usage[name][counter] = counter_value(counter, float(value))
            result[day.isoformat()] = dict(usage)
        return result

    async def tokens_this_minute(self, principal: str) -> int:
        value = await self._redis.get(self._minute_key(principal, self._clock.minute()))
        return int(value or 0)


async def spent_today(ledger: UsageLedger, principal: str, clock: Clock) -> float:
    day = clock.today()
    usage = (await ledger.days(principal, [day])).get(day.isoformat(), {})
    return float(usage.get(TOTAL, {}).get("cost_usd", 0.0))
