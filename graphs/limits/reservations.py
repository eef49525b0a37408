"""A turn's accounting: the budget reservations (their stores are `graphs/limits/budget.py`),
that is the caps that apply, the worst case a turn reserves, the 429 or 400 when it does not
fit, the history's share reserved once the run has fitted it; and the settlement that writes
what the turn used to the usage ledger and lets its reservations go, however the turn ended."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from typing import Any

from graphs.errors import BudgetExceeded, InvalidInput, Unavailable
from graphs.identity import Quota
from graphs.limits.budget import NANO_USD, BudgetCaps, Reservation, Shortfall
from graphs.limits.usage import SECONDS_PER_DAY
from graphs.limits.usage_counters import LedgerEntry
from graphs.model.demo_model import DEMO_MODEL_NAME
from graphs.model.turn import Turn
from graphs.route_services import RouteServices
from graphs.store.redis_client import REDIS_FAILURES
from graphs.store.round_trip import RoundTrip, alone

logger = logging.getLogger(__name__)


def budget_caps(services: RouteServices, quota: Quota) -> BudgetCaps:
    """The principal's token and spend caps (its key's where set, else the server's) and the
    route's own token cap."""
    settings = services.settings
    tokens = (
        settings.tokens_per_minute if quota.tokens_per_minute is None else quota.tokens_per_minute
    )
    spend = settings.daily_budget_usd if quota.daily_budget_usd is None else quota.daily_budget_usd
    return BudgetCaps(
        tokens_per_minute=tokens,
        route_tokens_per_minute=services.route.limits.tokens_per_minute or 0,
        daily_nano_usd=math.floor(spend * NANO_USD),
    )


def worst_case(
    services: RouteServices,
    principal: str,
    caps: BudgetCaps,
    input_tokens: int,
    max_tokens: int | None,
) -> Reservation:
    """One model call's most: `input_tokens` plus the effective `max_tokens`, priced at the
    dearest configured model; `InvalidInput` when that alone is over a whole cap."""
    ceiling = services.settings.max_output_tokens
    output = min(max_tokens or ceiling, ceiling)
    tokens = input_tokens + output
    nano_usd = dearest_price(services, caps, input_tokens, output)
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
    route = services.route.name if caps.route_tokens_per_minute else ""
    return Reservation(principal, tokens, nano_usd, route)


def dearest_price(services: RouteServices, caps: BudgetCaps, input_tokens: int, output: int) -> int:
    """The usage's price at the dearest configured model, in nano-dollars (the offline demo
    model costs nothing); `Unavailable` when a spend cap applies and a model has no price."""
    prices = {
        spec.label: 0
        if spec.provider == DEMO_MODEL_NAME
        else services.prices.nano_usd(spec.name, input_tokens, output)
        for spec, _ in services.models
    }
    unpriced = [label for label, price in prices.items() if price is None]
    if caps.daily_nano_usd and unpriced:
        raise Unavailable(
            f"A daily budget applies, but {', '.join(unpriced)} has no price: the operator must "
            "price it (PRICING_FILE) before budgeted requests can be served."
        )
    return max((price or 0 for price in prices.values()), default=0)


def exhausted(services: RouteServices, short: Shortfall, caps: BudgetCaps) -> BudgetExceeded:
    """The 429 for a reservation refused: retry when the minute (or UTC day) turns, or sooner,
    within `REQUEST_TIMEOUT`, when running turns hold the room (their reservations settle)."""
    now = services.clock.time()
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
        retry_after=min(period_left, services.settings.request_timeout),
    )


async def release_all(services: RouteServices, reservations: Sequence[Reservation]) -> None:
    """One principal's reservations, in one round trip."""
    if reservations:
        await services.budget.release(reservations[0].principal, reservations)


def input_to_reserve(services: RouteServices, turn_tokens: int) -> int:
    """A turn's input as admission knows it: the turn (and its tools) with the route's prompt;
    `MAX_INPUT_TOKENS` on a route with its own chain or graph, whose prompt is its own (every
    model call's prompt is held to that). A session's history is added by `cover_prompt`."""
    if services.route.kind != "chat":
        return services.settings.max_input_tokens
    return services.prompt_tokens + turn_tokens


async def cover_prompt(
    services: RouteServices,
    caps: BudgetCaps,
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
    needed = worst_case(services, first.principal, caps, input_tokens, max_tokens)
    covered = [r for r in map(Reservation.from_state, held) if r is not None]
    tokens = needed.tokens - sum(r.tokens for r in covered)
    nano_usd = needed.nano_usd - sum(r.nano_usd for r in covered)
    if tokens <= 0 and nano_usd <= 0:
        return list(held)
    extra = Reservation(first.principal, max(0, tokens), max(0, nano_usd), first.route)
    short = await services.budget.reserve(extra, caps, services.settings.reservation_ttl)
    if short is not None:
        raise exhausted(services, short, caps)
    return [*held, extra.as_state()]


def settle_turn_in(
    services: RouteServices,
    trip: RoundTrip,
    turn: Turn,
    model: str,
    usage: LedgerEntry | None,
    reservations: Sequence[dict[str, Any]],
) -> None:
    """What the turn used goes to the ledger, then replaces its reservations (if it had any):
    in that order, so that the use is never counted less than it was; queued in `trip`."""
    if usage is not None:
        services.usage.record_in(
            trip, turn.principal, model, usage, turn.end_user, route=services.route.name
        )
    held = [r for r in map(Reservation.from_state, reservations) if r is not None]
    if held:
        services.budget.settle_in(trip, held[0], usage.total_tokens if usage else 0)
        services.budget.release_in(trip, held[0].principal, held[1:])


async def settle_turn(
    services: RouteServices,
    turn: Turn,
    model: str,
    usage: LedgerEntry | None,
    reservations: Sequence[dict[str, Any]],
) -> None:
    """`settle_turn_in`, in a round trip of its own."""
    await alone(
        services.redis,
        lambda trip: settle_turn_in(services, trip, turn, model, usage, reservations),
    )


async def record_finished(
    services: RouteServices,
    turn: Turn,
    metadata: dict[str, Any],
    reservations: Sequence[dict[str, Any]],
    ending: RoundTrip | None = None,
) -> None:
    """A turn the model has answered goes to the ledger and replaces its reservations: queued
    in the run's `ending` trip where it has one (`api/admitted_run.py` sends it, shielded, however
    the run ends), else now, shielded from a cancellation (the client leaving) that would
    otherwise unrecord what was paid for."""
    usage = ledger_entry(metadata)
    model = str(metadata.get("model", "unknown"))
    if ending is not None and not ending.closed:
        settle_turn_in(services, ending, turn, model, usage, reservations)
        return
    await asyncio.shield(settle_turn(services, turn, model, usage, reservations))


def ledger_entry(metadata: dict[str, Any], *, partial: bool = False) -> LedgerEntry:
    """The ledger's entry for a turn, from its metadata (`Turn.metadata`)."""
    tokens = metadata.get("usage") or {}
    return LedgerEntry(
        input_tokens=tokens.get("input_tokens", 0),
        output_tokens=tokens.get("output_tokens", 0),
        total_tokens=tokens.get("total_tokens", 0),
        cost_usd=metadata.get("cost_usd") or 0.0,
        cache_hits=int(bool(metadata.get("cache_hit"))),
        partial_requests=int(partial),
        partial_tokens=tokens.get("total_tokens", 0) if partial else 0,
    )


async def record_unfinished(
    services: RouteServices, turn: Turn, reservations: Sequence[dict[str, Any]]
) -> None:
    """A turn that failed or was cancelled is not stored, but what its model calls used was
    paid for: it goes to the ledger (and so counts against the budgets), marked partial, and
    replaces the turn's budget reservation. The write is shielded from the cancellation that
    may be ending the turn; a failing ledger is logged, not raised over the turn's own failure."""
    await turn.settle()
    metadata = turn.metadata()
    usage = ledger_entry(metadata, partial=True) if turn.calls else None
    try:
        await asyncio.shield(settle_turn(services, turn, metadata["model"], usage, reservations))
    except REDIS_FAILURES as exc:
        logger.warning("recording an unfinished turn's usage failed: %s", type(exc).__name__)
