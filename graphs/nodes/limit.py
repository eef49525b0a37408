"""limit: per-principal admission: each turn reserves its worst case against the token and spend
budgets (`graphs/limits/reservations.py`) and the request is counted in the sliding-window rate,
in one round trip (the serving layer adds the session lock to it, `api/admission.py`).
A turn's reservations are settled (`settle_turn`) when it ends, however it ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig

from graphs.errors import RateLimited
from graphs.identity import Quota
from graphs.limits.budget import BudgetCaps, Reservation, Shortfall
from graphs.limits.ratelimit import RateLimitDecision
from graphs.limits.reservations import (
    budget_caps,
    exhausted,
    input_to_reserve,
    release_all,
    worst_case,
)
from graphs.model.params import read_params
from graphs.route_services import RouteServices
from graphs.run_facts import facts_of
from graphs.state import ChatState
from graphs.store.redis_client import REDIS_FAILURES
from graphs.store.round_trip import Reply, RoundTrip


@dataclass
class Admission:
    """What the HTTP layer took for one request: a reservation per turn and its units in the
    rate window. Each run claims its turn's share; what none claimed is given back."""

    principal: str
    caps: BudgetCaps = field(default_factory=BudgetCaps)
    reservations: list[Reservation] = field(default_factory=list)
    rate_hit: str | None = None
    units: int = 0
    started: int = 0
    _unclaimed: list[Reservation] = field(default_factory=list)
    _settled: set[str] = field(default_factory=set)

    def took(
        self, decision: RateLimitDecision, units: int, reservations: list[Reservation]
    ) -> None:
        self.rate_hit, self.units = decision.hit, units
        self.reservations, self._unclaimed = reservations, list(reservations)

    def settled(self, held: Sequence[dict[str, Any]]) -> None:
        """A run has settled (or queued the settlement of) these reservations (in its state's
        form): the request's end need not release them again."""
        self._settled.update(r.member for r in map(Reservation.from_state, held) if r)

    @property
    def unsettled(self) -> list[Reservation]:
        return [r for r in self.reservations if r.member not in self._settled]

    @property
    def several_unclaimed(self) -> bool:
        return len(self._unclaimed) > 1

    def claim(self, tokens: int | None = None) -> Reservation | None:
        """A run starts: its turn's reservation, the one of `tokens` (its turn's worst case;
        a batch's runs start in any order, and a run that took a smaller turn's reservation
        would have to reserve again what a larger one holds), else the nearest."""
        self.started += 1
        if not self._unclaimed:
            return None
        wanted = tokens or 0
        fits = [r for r in self._unclaimed if r.tokens >= wanted] or self._unclaimed
        chosen = min(fits, key=lambda r: r.tokens) if tokens else fits[-1]
        self._unclaimed.remove(chosen)
        return chosen


def refusal(decision: RateLimitDecision, window: float) -> RateLimited:
    return RateLimited(
        f"Rate limit of {decision.limit} requests per {window:g} s reached for this principal.",
        retry_after=decision.retry_after,
    )


def rate_limit(services: RouteServices, quota: Quota) -> int:
    """The principal's requests per window on this route: its key's quota where it has one,
    else the server's; a route's own rate limit caps the key's."""
    limit = quota.rate_limit_max or services.settings.rate_limit_max
    if services.route.limits.rate_limit_max is not None:
        limit = min(limit, services.route.limits.rate_limit_max)
    return limit


@dataclass(frozen=True)
class QueuedAdmission:
    """What `queue_admit` queued: each turn's reservation and the request's rate-window hit."""

    principal: str
    caps: BudgetCaps
    wanted: list[Reservation]
    shortfalls: list[Reply[Shortfall | None]]
    rate: Reply[RateLimitDecision]
    units: int


def queue_admit(
    services: RouteServices,
    trip: RoundTrip,
    principal: str,
    turns: Sequence[tuple[int, int | None]],
    quota: Quota | None = None,
) -> QueuedAdmission:
    """Queue in `trip` each turn's worst-case reservation (`(input tokens, max_tokens)`), in
    order, and the turns' units in the rate window; `InvalidInput` before anything is queued
    when a turn alone is over a whole cap."""
    quota = quota or Quota()
    caps = budget_caps(services, quota)
    wanted = (
        [worst_case(services, principal, caps, tokens, most) for tokens, most in turns]
        if caps.on
        else []
    )
    ttl = services.settings.reservation_ttl
    shortfalls = [services.budget.reserve_in(trip, one, caps, ttl) for one in wanted]
    rate = services.limiter.hit_in(trip, principal, len(turns), rate_limit(services, quota))
    return QueuedAdmission(principal, caps, wanted, shortfalls, rate, len(turns))


async def admitted(
    services: RouteServices, queued: QueuedAdmission
) -> tuple[RateLimitDecision, list[Reservation]]:
    """Once the trip is sent: the rate window's answer and the reservations, all or none. A
    turn the budgets refused (checked first: its 429 says which cap) raises `BudgetExceeded`;
    a rate refusal comes back as the decision. Either way what was taken goes back first; so
    does every reservation when a reply was a Redis error."""
    try:
        decision = queued.rate.value
        answers = [reply.value for reply in queued.shortfalls]
    except BaseException:
        await forget(services, queued)
        raise
    held = [wanted for wanted, short in zip(queued.wanted, answers, strict=True) if short is None]
    short = next((answer for answer in answers if answer is not None), None)
    if short is None and decision.allowed:
        return decision, held
    await release_all(services, held)
    if short is not None:
        if decision.hit is not None:
            units = range(1, queued.units + 1)
            await services.limiter.refund(queued.principal, decision.hit, units)
        raise exhausted(services, short, queued.caps)
    return decision, []


async def forget(services: RouteServices, queued: QueuedAdmission) -> None:
    """Release every reservation `queued` asked for, whether or not Redis applied it (a trip
    cut short, a reply lost): releasing one never taken does nothing. Shielded, and a failure
    is healed by the reservations' TTL; the rate units of a lost reply stay counted."""
    with contextlib.suppress(*REDIS_FAILURES):
        await asyncio.shield(release_all(services, queued.wanted))


async def admit(
    services: RouteServices,
    principal: str,
    turns: Sequence[tuple[int, int | None]],
    quota: Quota | None = None,
) -> tuple[RateLimitDecision, list[Reservation]]:
    """`queue_admit` and `admitted` in a round trip of their own."""
    trip = services.round_trip("admission")
    queued = queue_admit(services, trip, principal, turns, quota)
    try:
        await trip.send()
    except BaseException:
        await forget(services, queued)
        raise
    return await admitted(services, queued)


async def give_back(services: RouteServices, admission: Admission) -> None:
    """At the end of a request: release the reservations no run settled and refund the rate
    units of turns that never started."""
    await release_all(services, admission.unsettled)
    if admission.rate_hit is not None and admission.started < admission.units:
        units = range(admission.started + 1, admission.units + 1)
        await services.limiter.refund(admission.principal, admission.rate_hit, units)


def caps_of(services: RouteServices, config: RunnableConfig) -> BudgetCaps:
    """The caps the run was admitted under (its key's quota included), or the server's for a
    run that no HTTP layer admitted."""
    admission = facts_of(config).admission
    return admission.caps if admission is not None else budget_caps(services, Quota())


def turn_ask(services: RouteServices, state: ChatState, config: RunnableConfig) -> tuple[int, int]:
    """What admission reserves for the run's turn: its input and its effective max_tokens (as
    admission read and counted them, or from the run's own config and turn)."""
    ceiling = services.settings.max_output_tokens
    facts = facts_of(config)
    params = facts.params or read_params(config.get("configurable", {}), ceiling)
    turn_tokens = facts.turn_tokens
    if turn_tokens is None:
        turn_tokens = services.counter.count_messages(state.get("turn", []))
    return input_to_reserve(services, turn_tokens), min(params.max_tokens or ceiling, ceiling)


async def admit_run(
    services: RouteServices, state: ChatState, config: RunnableConfig
) -> Reservation | None:
    """Admission for a run that did not come through the HTTP layer (`langgraph dev`)."""
    decision, reservations = await admit(
        services, facts_of(config).principal, [turn_ask(services, state, config)]
    )
    if not decision.allowed:
        raise refusal(decision, services.settings.rate_limit_window)
    return reservations[0] if reservations else None


def make_limit(services: RouteServices) -> Any:
    async def limit(state: ChatState, config: RunnableConfig) -> dict[str, Any]:
        admission = facts_of(config).admission
        if admission is not None:
            tokens = sum(turn_ask(services, state, config)) if admission.several_unclaimed else None
            reservation = admission.claim(tokens)
        else:
            reservation = await admit_run(services, state, config)
        return {"reservations": [reservation.as_state()] if reservation else []}

    return limit
