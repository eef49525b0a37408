"""Budget reservations: from admission until its turn is settled, a request holds its worst case
against the principal's `TOKENS_PER_MINUTE`, the route's `tokens_per_minute` and
`DAILY_BUDGET_USD`, so that concurrent requests cannot together overshoot a cap (each one sees
the others' reservations). Settling replaces the reservation with what the turn used (the
usage ledger records that); a reservation never settled (its worker died) lapses after
`BUDGET_RESERVATION_TTL`, by default a little longer than the request could have run.

Both stores apply one rule, `shortfall`; in Redis it runs as one script on the principal's
hash-tagged keys (one slot on Redis Cluster).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from graphs.clock import SYSTEM_CLOCK, Clock
from graphs.limits.usage import COST_FIELD, MINUTE_KEY_TTL, InMemoryUsageLedger, RedisUsageLedger
from graphs.store.keys import RedisKeys
from graphs.store.redis_client import RedisClient
from graphs.store.round_trip import Reply, RoundTrip, alone

NANO_USD = 1_000_000_000  # reservations count spend in integer nano-dollars: no float drift
Cap = Literal["tokens", "route_tokens", "spend"]


@dataclass(frozen=True)
class BudgetCaps:
    """The caps one request is admitted under (0: that cap is off)."""

    tokens_per_minute: int = 0  # the principal's, on every route
    route_tokens_per_minute: int = 0  # the principal's on this route only
    daily_nano_usd: int = 0

    @property
    def on(self) -> bool:
        return bool(self.tokens_per_minute or self.route_tokens_per_minute or self.daily_nano_usd)


@dataclass(frozen=True)
class Reservation:
    """One turn's worst case, held for `principal`; `route` is set when the route has a token
    cap of its own. It travels in the graph's state as a plain dict (`as_state`)."""

    principal: str
    tokens: int
    nano_usd: int
    route: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def member(self) -> str:
        return f"{self.id}|{self.route}|{self.tokens}|{self.nano_usd}"

    def as_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, value: object) -> Reservation | None:
        return cls(**value) if isinstance(value, dict) else None


@dataclass(frozen=True)
class BudgetUse:
    """What the principal has used (settled) and holds (reserved) when it asks for more."""

    tokens_this_minute: int = 0
    route_tokens_this_minute: int = 0
    nano_usd_today: float = 0.0
    held_tokens: int = 0
    held_route_tokens: int = 0
    held_nano_usd: int = 0


@dataclass(frozen=True)
class Shortfall:
    """Why a reservation was refused: the cap, and whether settled use alone leaves no room
    (else the reservations of turns still running do, and will soon be settled)."""

    cap: Cap
    settled_alone: bool


def shortfall(use: BudgetUse, caps: BudgetCaps, wanted: Reservation) -> Shortfall | None:
    """The cap that `wanted` would overshoot, given the use and the reservations held."""
    route_cap = caps.route_tokens_per_minute if wanted.route else 0
    checks: list[tuple[Cap, int, float, int, int]] = [
        ("tokens", caps.tokens_per_minute, use.tokens_this_minute, use.held_tokens, wanted.tokens),
        (
            "route_tokens",
            route_cap,
            use.route_tokens_this_minute,
            use.held_route_tokens,
            wanted.tokens,
        ),
        ("spend", caps.daily_nano_usd, use.nano_usd_today, use.held_nano_usd, wanted.nano_usd),
    ]
    for cap, limit, used, held, amount in checks:
        if limit and used + held + amount > limit:
            return Shortfall(cap, settled_alone=used + amount > limit)
    return None


class BudgetStore(Protocol):
    async def reserve(
        self, wanted: Reservation, caps: BudgetCaps, ttl: float
    ) -> Shortfall | None: ...

    async def settle(self, reservation: Reservation, total_tokens: int) -> None: ...

    async def release(self, principal: str, reservations: Sequence[Reservation]) -> None:
        """Drop the reservations still held (settled ones are gone already)."""

    def reserve_in(
        self, trip: RoundTrip, wanted: Reservation, caps: BudgetCaps, ttl: float
    ) -> Reply[Shortfall | None]:
        """`reserve`, queued in `trip` (a turn's admission)."""

    def settle_in(self, trip: RoundTrip, reservation: Reservation, total_tokens: int) -> None:
        """`settle`, queued in `trip` (a turn's end)."""

    def release_in(
        self, trip: RoundTrip, principal: str, reservations: Sequence[Reservation]
    ) -> None: ...


class InMemoryBudget:
    """The embedded twin: reservations per principal in a dict, on the ledger's counters."""

    def __init__(self, ledger: InMemoryUsageLedger, clock: Clock = SYSTEM_CLOCK) -> None:
        self._ledger = ledger
        self._clock = clock
        self._held: dict[str, dict[str, tuple[float, Reservation]]] = {}
        self._route_minutes: dict[tuple[str, str, int], int] = {}

    def _live(self, principal: str) -> list[Reservation]:
        now = self._clock.monotonic()
        held = self._held.get(principal, {})
        for key in [key for key, (expiry, _) in held.items() if expiry <= now]:
            del held[key]
        return [reservation for _, reservation in held.values()]

    async def reserve(self, wanted: Reservation, caps: BudgetCaps, ttl: float) -> Shortfall | None:
        # Nothing below waits, so no other request can reserve between the check and the add.
        live = self._live(wanted.principal)
        spending = await self._ledger.spending(wanted.principal)
        minute = self._clock.minute()
        use = BudgetUse(
            tokens_this_minute=spending.tokens_this_minute,
            route_tokens_this_minute=self._route_minutes.get(
                (wanted.route, wanted.principal, minute), 0
            ),
            nano_usd_today=spending.cost_today_usd * NANO_USD,
            held_tokens=sum(r.tokens for r in live),
            held_route_tokens=sum(
                r.tokens for r in live if wanted.route and r.route == wanted.route
            ),
            held_nano_usd=sum(r.nano_usd for r in live),
        )
        refused = shortfall(use, caps, wanted)
        if refused is None:
            expiry = self._clock.monotonic() + ttl
            self._held.setdefault(wanted.principal, {})[wanted.id] = (expiry, wanted)
        return refused

    async def settle(self, reservation: Reservation, total_tokens: int) -> None:
        if reservation.route:
            minute = self._clock.minute()
            for key in [k for k in self._route_minutes if k[2] < minute - 1]:
                del self._route_minutes[key]
            key = (reservation.route, reservation.principal, minute)
            self._route_minutes[key] = self._route_minutes.get(key, 0) + total_tokens
        await self.release(reservation.principal, [reservation])

    async def release(self, principal: str, reservations: Sequence[Reservation]) -> None:
        held = self._held.get(principal, {})
        for reservation in reservations:
            held.pop(reservation.id, None)
        if not held:
            self._held.pop(principal, None)

    def reserve_in(
        self, trip: RoundTrip, wanted: Reservation, caps: BudgetCaps, ttl: float
    ) -> Reply[Shortfall | None]:
        return trip.local(lambda: self.reserve(wanted, caps, ttl))

    def settle_in(self, trip: RoundTrip, reservation: Reservation, total_tokens: int) -> None:
        trip.local(lambda: self.settle(reservation, total_tokens))

    def release_in(
        self, trip: RoundTrip, principal: str, reservations: Sequence[Reservation]
    ) -> None:
        trip.local(lambda: self.release(principal, reservations))


# `shortfall` on the principal's keys, then the reservation added: one atomic round trip.
# Members of the held set are `id|route|tokens|nano_usd`, scored by when they lapse (Redis's
# clock, so every replica agrees).
RESERVE_LUA = """
local held_key, minute_key, day_key, route_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local member, route = ARGV[1], ARGV[2]
local tokens, nano = tonumber(ARGV[3]), tonumber(ARGV[4])
local tpm, route_tpm, budget = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local ttl = tonumber(ARGV[8])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', held_key, '-inf', now)
local held_tokens, held_route, held_nano = 0, 0, 0
for _, entry in ipairs(redis.call('ZRANGE', held_key, 0, -1)) do
  local _, _, r, tk, nn = string.find(entry, '^[^|]*|([^|]*)|(%d+)|(%d+)$')
  held_tokens = held_tokens + tonumber(tk)
  held_nano = held_nano + tonumber(nn)
  if route ~= '' and r == route then held_route = held_route + tonumber(tk) end
end
local used = tonumber(redis.call('GET', minute_key) or '0')
local route_used = 0
if route ~= '' then
  route_used = tonumber(redis.call('GET', route_key) or '0')
else
  route_tpm = 0
end
local spent = tonumber(redis.call('HGET', day_key, ARGV[9]) or '0') * 1000000000
local checks = {{tpm, used, held_tokens, tokens}, {route_tpm, route_used, held_route, tokens},
                {budget, spent, held_nano, nano}}
for i, c in ipairs(checks) do
  if c[1] > 0 and c[2] + c[3] + c[4] > c[1] then
    local alone = 0
    if c[2] + c[4] > c[1] then alone = 1 end
    return {i, alone}
  end
end
redis.call('ZADD', held_key, now + ttl, member)
-- Routes' lifetimes differ: the set lives as long as its longest-lived reservation.
if redis.call('PTTL', held_key) < ttl then
  redis.call('PEXPIRE', held_key, ttl)
end
return {0, 0}
"""
SETTLE_LUA = """
if ARGV[2] ~= '0' then
  redis.call('INCRBY', KEYS[2], ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
redis.call('ZREM', KEYS[1], ARGV[1])
"""
CAPS: tuple[Cap, ...] = ("tokens", "route_tokens", "spend")


class RedisBudget:
    """The production store: a sorted set of held reservations per principal, beside the
    ledger's minute and day counters (`graphs/limits/usage.py` names those keys)."""

    def __init__(self, redis: RedisClient, ledger: RedisUsageLedger, prefix: str) -> None:
        self._redis = redis
        self._ledger = ledger
        self._keys = RedisKeys(prefix)
        self._reserve = redis.register_script(RESERVE_LUA)
        self._settle = redis.register_script(SETTLE_LUA)

    def _held_key(self, principal: str) -> str:
        return self._keys.reserved(principal)

    def _route_minute_key(self, route: str, principal: str) -> str:
        return self._keys.route(route).tokens_minute(principal, self._ledger.clock.minute())

    async def reserve(self, wanted: Reservation, caps: BudgetCaps, ttl: float) -> Shortfall | None:
        return (
            await alone(self._redis, lambda trip: self.reserve_in(trip, wanted, caps, ttl))
        ).value

    async def settle(self, reservation: Reservation, total_tokens: int) -> None:
        await alone(self._redis, lambda trip: self.settle_in(trip, reservation, total_tokens))

    async def release(self, principal: str, reservations: Sequence[Reservation]) -> None:
        await alone(self._redis, lambda trip: self.release_in(trip, principal, reservations))

    def reserve_in(
        self, trip: RoundTrip, wanted: Reservation, caps: BudgetCaps, ttl: float
    ) -> Reply[Shortfall | None]:
        principal = wanted.principal
        keys = [
            self._held_key(principal),
            self._ledger.minute_key(principal),
            self._ledger.day_key(principal),
            self._route_minute_key(wanted.route, principal),
        ]
        args: list[str | int] = [
            wanted.member,
            wanted.route,
            wanted.tokens,
            wanted.nano_usd,
            caps.tokens_per_minute,
            caps.route_tokens_per_minute,
            caps.daily_nano_usd,
            int(ttl * 1000),
            COST_FIELD,
        ]
        return trip.script(self._reserve, keys, args, shortfall_of)

    def settle_in(self, trip: RoundTrip, reservation: Reservation, total_tokens: int) -> None:
        tokens = total_tokens if reservation.route else 0
        keys = [
            self._held_key(reservation.principal),
            self._route_minute_key(reservation.route, reservation.principal),
        ]
        trip.script(self._settle, keys, [reservation.member, tokens, MINUTE_KEY_TTL])

    def release_in(
        self, trip: RoundTrip, principal: str, reservations: Sequence[Reservation]
    ) -> None:
        if reservations:
            trip.command("ZREM", self._held_key(principal), *(r.member for r in reservations))


def shortfall_of(reply: list[int]) -> Shortfall | None:
    """The reservation script's answer: 0, or which cap refused and whether settled use alone
    is over it."""
    refused, alone = reply
    return None if not int(refused) else Shortfall(CAPS[int(refused) - 1], bool(int(alone)))
