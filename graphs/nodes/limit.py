"""limit: per-principal admission: token and spend budgets, then the sliding-window rate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig

from graphs.errors import BudgetExceeded, RateLimited
from graphs.identity import Quota, principal_of
from graphs.runtime.context import ChatRuntime
from graphs.runtime.ratelimit import RateLimitDecision
from graphs.runtime.usage import SECONDS_PER_DAY
from graphs.state import ChatState


@dataclass(frozen=True)
class AdmissionTicket:
    """Proof, set server-side, that the HTTP layer already admitted this run.

    It is a Python object, not JSON, so no client can forge one through `configurable`.
    """

    principal: str


def refusal(decision: RateLimitDecision, window: float) -> RateLimited:
    return RateLimited(
        f"Rate limit of {decision.limit} requests per {window:g} s reached for this principal.",
        retry_after=decision.retry_after,
    )


def effective_limits(runtime: ChatRuntime, quota: Quota) -> tuple[int, int, float]:
    """The rate limit, tokens per minute and daily budget of a principal: its key's quota
    where it has one, else the server's settings; a route's own rate limit caps the key's."""
    settings = runtime.settings
    rate_limit = quota.rate_limit_max or settings.rate_limit_max
    if runtime.route.limits.rate_limit_max is not None:
        rate_limit = min(rate_limit, runtime.route.limits.rate_limit_max)
    return (
        rate_limit,
        settings.tokens_per_minute if quota.tokens_per_minute is None else quota.tokens_per_minute,
        settings.daily_budget_usd if quota.daily_budget_usd is None else quota.daily_budget_usd,
    )


async def check_budgets(
    runtime: ChatRuntime, principal: str, tokens_per_minute: int, daily_budget_usd: float
) -> None:
    """Raise `BudgetExceeded` when the principal has used up this minute's tokens or today's
    spend (read in one round trip); it may retry when that minute or UTC day is over."""
    if not tokens_per_minute and not daily_budget_usd:
        return
    now = runtime.clock.time()
    spending = await runtime.usage.spending(principal)
    if tokens_per_minute:
        used = spending.tokens_this_minute
        if used >= tokens_per_minute:
            raise BudgetExceeded(
                f"TOKENS_PER_MINUTE={tokens_per_minute} used up ({used} this minute).",
                retry_after=60 - now % 60,
            )
    if daily_budget_usd:
        spent = spending.cost_today_usd
        if spent >= daily_budget_usd:
            raise BudgetExceeded(
                f"DAILY_BUDGET_USD={daily_budget_usd:g} spent (${spent:.6f} today).",
                retry_after=SECONDS_PER_DAY - now % SECONDS_PER_DAY,
            )


async def admit(
    runtime: ChatRuntime, principal: str, cost: int = 1, quota: Quota | None = None
) -> RateLimitDecision:
    """Budgets first (they count nothing), then `cost` requests in the rate window."""
    rate_limit, tokens_per_minute, daily_budget_usd = effective_limits(runtime, quota or Quota())
    await check_budgets(runtime, principal, tokens_per_minute, daily_budget_usd)
    return await runtime.limiter.hit(principal, cost, rate_limit)


def make_limit(runtime: ChatRuntime) -> Any:
    async def limit(state: ChatState, config: RunnableConfig) -> dict[str, Any]:
        if not isinstance(config.get("configurable", {}).get("admission"), AdmissionTicket):
            decision = await admit(runtime, principal_of(config))
            if not decision.allowed:
                raise refusal(decision, runtime.settings.rate_limit_window)
        return {}

    return limit
