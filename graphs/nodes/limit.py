"""limit: per-principal admission by sliding-window request rate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig

from graphs.errors import RateLimited
from graphs.runtime.context import ChatRuntime
from graphs.runtime.ratelimit import RateLimitDecision
from graphs.state import ChatState

ANONYMOUS = "anonymous"


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


async def admit(runtime: ChatRuntime, principal: str) -> None:
    """Count one request for `principal`; raise `RateLimited` when the window is full."""
    decision = await runtime.limiter.hit(principal)
    if not decision.allowed:
        raise refusal(decision, runtime.settings.rate_limit_window)


def principal_of(config: RunnableConfig) -> str:
    return str(config.get("configurable", {}).get("principal") or ANONYMOUS)


def make_limit(runtime: ChatRuntime) -> Any:
    async def limit(state: ChatState, config: RunnableConfig) -> dict[str, Any]:
        if not isinstance(config.get("configurable", {}).get("admission"), AdmissionTicket):
            await admit(runtime, principal_of(config))
        return {}

    return limit
