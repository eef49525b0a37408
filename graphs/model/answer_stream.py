"""One answer of graphgate's model from the first configured model that answers, streamed from
a producer task of its own: the attempt counter and the concurrency slot then live in one task's
context from start to end, whenever and wherever the consumer stops reading, and the task puts
its call in the turn however it ends (answered, or cut short and counted as partial).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator
from typing import Any

from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.runnables.config import var_child_runnable_config

from graphs.model.accounting import ReplyInProgress, finished_call
from graphs.model.fallback import first_answer
from graphs.model.turn import ModelCall, Turn
from graphs.route_services import RouteServices
from graphs.telemetry.run_spans import run_parent, within
from graphs.telemetry.tracer import tracing


class Finished:
    """The producer's last word: the call that answered, after its final chunk."""

    def __init__(self, call: ModelCall) -> None:
        self.call = call


class AnswerStream:
    """One answer from the first model that answers, streamed from a producer task of its own
    (see the module's docstring); `call` is the call that answered, once the stream is over."""

    def __init__(
        self,
        services: RouteServices,
        messages: list[BaseMessage],
        kwargs: dict[str, Any],
        *,
        whole: bool,
    ) -> None:
        self.services, self.messages, self.kwargs = services, messages, kwargs
        self.whole = whole  # the provider's reply asked for whole, not streamed
        self.call: ModelCall | None = None

    async def chunks(self, turn: Turn, prompt_tokens: int) -> AsyncIterator[AIMessageChunk]:
        """The provider's chunks as they arrive. `prompt_tokens`: for the producer to count a
        reply cut short."""
        queue: asyncio.Queue[AIMessageChunk | Finished | BaseException] = asyncio.Queue()
        # The provider call is this model's own run, not a child chat-model run whose tokens
        # `astream_events` would report a second time: it runs outside the chain's run config.
        context = contextvars.copy_context()
        context.run(var_child_runnable_config.set, None)
        if tracing():  # its span's parent is the node's, which the chain's run config names
            within(context, run_parent())
        producer = asyncio.create_task(self._produce(queue, turn, prompt_tokens), context=context)
        turn.producing(producer)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, Finished):
                    self.call = item.call
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            if not producer.done():
                # Wait for it to stop, so a reply it leaves unfinished is in the turn's calls
                # before whoever cancelled us counts them.
                producer.cancel()
                await asyncio.wait([producer])

    async def _produce(
        self,
        queue: asyncio.Queue[AIMessageChunk | Finished | BaseException],
        turn: Turn,
        prompt_tokens: int,
    ) -> None:
        services, progress = self.services, ReplyInProgress()
        try:
            async with services.slots.hold():
                call = await first_answer(
                    services.models,
                    services.prices,
                    self.messages,
                    self.kwargs,
                    queue.put_nowait,
                    progress,
                    whole=self.whole,
                )
            queue.put_nowait(Finished(call))
        except Exception as exc:  # noqa: BLE001 - not swallowed: the consumer re-raises it
            queue.put_nowait(exc)
        finally:
            # The producer itself puts the call in the turn, however it ended: its consumer may
            # be gone before reading the end.
            kept = finished_call(progress, prompt_tokens, services.counter, services.prices)
            if kept is not None:
                turn.calls.append(kept)
