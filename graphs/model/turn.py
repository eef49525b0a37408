"""The turn a chain runs for: who asked, with which parameters and tools, and every model call
it made. The llm node opens one per turn; graphgate's model reads it and adds each call's
usage, cost, retries and fallback, so a chain that calls the model twice is counted twice and
the reply's metadata sums the turn.

It travels in a context variable: a team's chain sits between the node and the model, and it
cannot be asked to pass anything along. asyncio copies the context into the tasks a chain
starts, and they share the one `Turn` object.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from graphs.model.params import ModelParams

TokenUsage = dict[str, int]
NO_USAGE: TokenUsage = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}


@dataclass(frozen=True)
class ModelCall:
    """One call of graphgate's model: the model that answered and what it cost."""

    model: str
    usage: TokenUsage
    cost_usd: float | None
    fallback_used: bool = False
    retries: int | None = None
    cache_hit: bool = False
    partial: bool = False  # cut short; its usage counted from what streamed


@dataclass(frozen=True)
class ToolRequest:
    """What a `/v1` client asked for beyond text: tools and a response format, forwarded."""

    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None

    @property
    def empty(self) -> bool:
        return not self.tools and self.response_format is None


@dataclass
class Turn:
    principal: str
    params: ModelParams = field(default_factory=ModelParams)
    tools: ToolRequest = field(default_factory=ToolRequest)
    end_user: str | None = None  # the caller's own user (`/v1`'s `user`), for the ledger
    calls: list[ModelCall] = field(default_factory=list)
    # The provider calls still running: each adds itself to `calls` when it ends.
    _producers: set[asyncio.Task[None]] = field(default_factory=set)

    def producing(self, producer: asyncio.Task[None]) -> None:
        self._producers.add(producer)
        producer.add_done_callback(self._producers.discard)

    async def settle(self) -> None:
        """Stop the provider calls still running (a turn cut short elsewhere than in them)
        and wait until each has put itself in `calls`."""
        running = list(self._producers)
        for producer in running:
            producer.cancel()
        if running:
            await asyncio.wait(running)

    def metadata(self) -> dict[str, Any]:
        """The reply's `response_metadata` for the whole turn: the last model that answered,
        usage and cost summed over every call. An unpriced call adds nothing to the cost (and
        is logged); the cost is None only when no call had a price."""
        usage = {key: sum(call.usage.get(key, 0) for call in self.calls) for key in NO_USAGE}
        costs = [call.cost_usd for call in self.calls if call.cost_usd is not None]
        retries = [call.retries for call in self.calls if call.retries is not None]
        return {
            "model": self.calls[-1].model if self.calls else "none",
            "fallback_used": any(call.fallback_used for call in self.calls),
            "retries": sum(retries) if retries else None,
            "cache_hit": bool(self.calls) and all(call.cache_hit for call in self.calls),
            "model_calls": len(self.calls),
            "usage": usage,
            "cost_usd": sum(costs) if costs or not self.calls else None,
        }


_TURN: ContextVar[Turn | None] = ContextVar("graphgate_turn", default=None)


def current_turn() -> Turn | None:
    return _TURN.get()


@contextmanager
def running_turn(turn: Turn) -> Iterator[Turn]:
    token = _TURN.set(turn)
    try:
        yield turn
    finally:
        _TURN.reset(token)
