"""limit: per-principal admission: each turn reserves its worst case against the token and spend
budgets (`graphs/runtime/budget.py`), then the request is counted in the sliding-window rate.
A turn's reservation is settled (`settle_turn`) when it ends, however it ends."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig

from graphs.demo_model import DEMO_MODEL_NAME
from graphs.errors import BudgetExceeded, InvalidInput, RateLimited, Unavailable
from graphs.identity import Quota, principal_of
from graphs.model_params import read_params
from graphs.runtime.budget import NANO_USD, BudgetCaps, Reservation, Shortfall
from graphs.runtime.context import ChatRuntime
from graphs.runtime.ratelimit import RateLimitDecision
from graphs.runtime.usage import SECONDS_PER_DAY, Usage
from graphs.state import ChatState


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

    def took(
        self, decision: RateLimitDecision, units: int, reservations: list[Reservation]
    ) -> None:
        self.rate_hit, self.units = decision.hit, units
        self.reservations, self._unclaimed = reservations, list(reservations)

    def claim(self) -> Reservation | None:
        """A run starts: its turn's reservation (any one of the request's: each is settled to
        what its run used, so the sum comes out exact)."""
        self.started += 1
        return self._unclaimed.pop() if self._unclaimed else None


@dataclass(frozen=True)
class AdmissionTicket:
    """Proof, set server-side, that the HTTP layer already admitted this run.

    It is a Python object, not JSON, so no client can forge one through `configurable`.
    """

    principal: str
    admission: Admission | None = None


def refusal(decision: RateLimitDecision, window: float) -> RateLimited:
    return RateLimited(
        f"Rate limit of {decision.limit} requests per {window:g} s reached for this principal.",
        retry_after=decision.retry_after,
    )


def rate_limit(runtime: ChatRuntime, quota: Quota) -> int:
    """The principal's requests per window on this route: its key's quota where it has one,
    else the server's; a route's own rate limit caps the key's."""
    limit = quota.rate_limit_max or runtime.settings.rate_limit_max
    if runtime.route.limits.rate_limit_max is not None:
        limit = min(limit, runtime.route.limits.rate_limit_max)
    return limit


def budget_caps(runtime: ChatRuntime, quota: Quota) -> BudgetCaps:
    """The principal's token and spend caps (its key's where set, else the server's) and the
    route's own token cap."""
    settings = runtime.settings
    tokens = (
        settings.tokens_per_minute if quota.tokens_per_minute is None else quota.tokens_per_minute
    )
    spend = settings.daily_budget_usd if quota.daily_budget_usd is None else quota.daily_budget_usd
    return BudgetCaps(
        tokens_per_minute=tokens,
        route_tokens_per_minute=runtime.route.limits.tokens_per_minute or 0,
        daily_nano_usd=math.floor(spend * NANO_USD),
    )


def worst_case(
    runtime: ChatRuntime,
    principal: str,
    caps: BudgetCaps,
    input_tokens: int,
    max_tokens: int | None,
) -> Reservation:
    """One model call's most: `input_tokens` plus the effective `max_tokens`, priced at the
    dearest configured model; `InvalidInput` when that alone is over a whole cap."""
    ceiling = runtime.settings.max_output_tokens
    output = min(max_tokens or ceiling, ceiling)
    tokens, usage = input_tokens + output, (input_tokens, output)
    prices = [  # the offline demo model costs nothing
        0 if spec.provider == DEMO_MODEL_NAME else runtime.prices.nano_usd(spec.name, *usage)
        for spec, _ in runtime.models
    ]
    if caps.daily_nano_usd and None in prices:
        unpriced = [
            spec.label
            for (spec, _), price in zip(runtime.models, prices, strict=True)
            if price is None
        ]
        raise Unavailable(
            f"A daily budget applies, but {', '.join(unpriced)} has no price: the operator must "
            "price it (PRICING_FILE) before budgeted requests can be served."
        )
    nano_usd = max((price or 0 for price in prices), default=0)
    too_big = [
        (f"TOKENS_PER_MINUTE={caps.tokens_per_minute}", tokens > caps.tokens_per_minute > 0),
        (
            f"the route's tokens_per_minute={caps.route_tokens_per_minute}",
            tokens > caps.route_tokens_per_minute > 0,
        ),
        (
            f"DAILY_BUDGET_USD={caps.daily_nano_usd / NANO_USD:g}",
            nano_usd > caps.daily_nano_usd > 0,
        ),
    ]
    for cap, exceeded in too_big:
        if exceeded:
            price = (
                f", ${nano_usd / NANO_USD:.6f} at the dearest model" if caps.daily_nano_usd else ""
            )
            raise InvalidInput(
                f"This turn may use {tokens} tokens ({input_tokens} input + max_tokens {output})"
                f"{price}: more than {cap} allows. Send a smaller max_tokens."
            )
    route = runtime.route.name if caps.route_tokens_per_minute else ""
    return Reservation(principal, tokens, nano_usd, route)


def exhausted(runtime: ChatRuntime, short: Shortfall, caps: BudgetCaps) -> BudgetExceeded:
    """The 429 for a reservation refused: retry when the minute (or UTC day) turns, or sooner,
    within `REQUEST_TIMEOUT`, when running turns hold the room (their reservations settle)."""
    now = runtime.clock.time()
    if short.cap == "spend":
        message = f"DAILY_BUDGET_USD={caps.daily_nano_usd / NANO_USD:g} reached today"
        period_left = SECONDS_PER_DAY - now % SECONDS_PER_DAY
    else:
        cap = caps.tokens_per_minute if short.cap == "tokens" else caps.route_tokens_per_minute
        name = "TOKENS_PER_MINUTE" if short.cap == "tokens" else "the route's tokens_per_minute"
        message = f"{name}={cap} reached this minute"
        period_left = 60 - now % 60
    if short.settled_alone:
        return BudgetExceeded(f"{message}.", retry_after=period_left)
    return BudgetExceeded(
        f"{message}, counting the worst case of the turns still running.",
        retry_after=min(period_left, runtime.settings.request_timeout),
    )


async def reserve_turns(
    runtime: ChatRuntime,
    principal: str,
    quota: Quota,
    turns: Sequence[tuple[int, int | None]],
) -> list[Reservation]:
    """Reserve each turn's worst case (`(input tokens, max_tokens)`), all or none."""
    caps = budget_caps(runtime, quota)
    if not caps.on:
        return []
    held: list[Reservation] = []
    try:
        for input_tokens, max_tokens in turns:
            wanted = worst_case(runtime, principal, caps, input_tokens, max_tokens)
            short = await runtime.budget.reserve(wanted, caps, runtime.settings.reservation_ttl)
            if short is not None:
                raise exhausted(runtime, short, caps)
            held.append(wanted)
    except BaseException:
        await release_all(runtime, held)
        raise
    return held


async def release_all(runtime: ChatRuntime, reservations: Sequence[Reservation]) -> None:
    """One principal's reservations, in one round trip."""
    if reservations:
        await runtime.budget.release(reservations[0].principal, reservations)


async def admit(
    runtime: ChatRuntime,
    principal: str,
    turns: Sequence[tuple[int, int | None]],
    quota: Quota | None = None,
) -> tuple[RateLimitDecision, list[Reservation]]:
    """Reserve the turns' budgets, then count them in the rate window; a rate refusal (the
    decision says so) gives the reservations back at once."""
    quota = quota or Quota()
    reservations = await reserve_turns(runtime, principal, quota, turns)
    try:
        decision = await runtime.limiter.hit(principal, len(turns), rate_limit(runtime, quota))
    except BaseException:
        await release_all(runtime, reservations)
        raise
    if not decision.allowed:
        await release_all(runtime, reservations)
        return decision, []
    return decision, reservations


async def give_back(runtime: ChatRuntime, admission: Admission) -> None:
    """At the end of a request: release its reservations (those already settled are gone)
    and refund the rate units of turns that never started."""
    await release_all(runtime, admission.reservations)
    if admission.rate_hit is not None and admission.started < admission.units:
        units = range(admission.started + 1, admission.units + 1)
        await runtime.limiter.refund(admission.principal, admission.rate_hit, units)


def input_to_reserve(runtime: ChatRuntime, turn_tokens: int) -> int:
    """A turn's input as admission knows it: the turn (and its tools) with the route's prompt;
    `MAX_INPUT_TOKENS` on a route with its own chain, whose prompt is its own (every model
    call's prompt is held to that). A session's history is added by `cover_prompt`."""
    if runtime.route.chain is not None:
        return runtime.settings.max_input_tokens
    return runtime.prompt_tokens + turn_tokens


def caps_of(runtime: ChatRuntime, config: RunnableConfig) -> BudgetCaps:
    """The caps the run was admitted under (its key's quota included), or the server's for a
    run that no HTTP layer admitted."""
    ticket = config.get("configurable", {}).get("admission")
    if isinstance(ticket, AdmissionTicket) and ticket.admission is not None:
        return ticket.admission.caps
    return budget_caps(runtime, Quota())


async def cover_prompt(
    runtime: ChatRuntime,
    config: RunnableConfig,
    held: Sequence[dict[str, Any]],
    input_tokens: int,
    max_tokens: int | None,
) -> list[dict[str, Any]]:
    """The turn's reservations, grown to cover its prompt now that its history is fitted:
    admission reserved the turn itself, the history is reserved here, before any model call,
    atomically against the caps as admission's was (429 `budget_exceeded` when it does not
    fit)."""
    first = Reservation.from_state(held[0]) if held else None
    if first is None:
        return list(held)
    caps = caps_of(runtime, config)
    needed = worst_case(runtime, first.principal, caps, input_tokens, max_tokens)
    covered = [r for r in map(Reservation.from_state, held) if r is not None]
    tokens = needed.tokens - sum(r.tokens for r in covered)
    nano_usd = needed.nano_usd - sum(r.nano_usd for r in covered)
    if tokens <= 0 and nano_usd <= 0:
        return list(held)
    extra = Reservation(first.principal, max(0, tokens), max(0, nano_usd), first.route)
    short = await runtime.budget.reserve(extra, caps, runtime.settings.reservation_ttl)
    if short is not None:
        raise exhausted(runtime, short, caps)
    return [*held, extra.as_state()]


async def admit_run(
    runtime: ChatRuntime, state: ChatState, config: RunnableConfig
) -> Reservation | None:
    """Admission for a run that did not come through the HTTP layer (`langgraph dev`)."""
    configurable = config.get("configurable", {})
    params = read_params(configurable, runtime.settings.max_output_tokens)
    turn_tokens = runtime.counter.count_messages(state.get("turn", []))
    input_tokens = input_to_reserve(runtime, turn_tokens)
    asks = [(input_tokens, params.max_tokens)]
    decision, reservations = await admit(runtime, principal_of(config), asks)
    if not decision.allowed:
        raise refusal(decision, runtime.settings.rate_limit_window)
    return reservations[0] if reservations else None


async def settle_turn(
    runtime: ChatRuntime,
    principal: str,
    model: str,
    usage: Usage | None,
    reservations: Sequence[dict[str, Any]],
) -> None:
    """What the turn used goes to the ledger, then replaces its reservations (if it had any):
    in that order, so that the use is never counted less than it was."""
    if usage is not None:
        await runtime.usage.record(principal, model, usage)
    held = [r for r in map(Reservation.from_state, reservations) if r is not None]
    if held:
        await runtime.budget.settle(held[0], usage.total_tokens if usage else 0)
        await release_all(runtime, held[1:])


def make_limit(runtime: ChatRuntime) -> Any:
    async def limit(state: ChatState, config: RunnableConfig) -> dict[str, Any]:
        ticket = config.get("configurable", {}).get("admission")
        if isinstance(ticket, AdmissionTicket):
            reservation = ticket.admission.claim() if ticket.admission else None
        else:
            reservation = await admit_run(runtime, state, config)
        return {"reservations": [reservation.as_state()] if reservation else []}

    return limit
