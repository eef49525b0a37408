"""Fallback with retries: the configured models in order, each with its SDK's retries, until
one answers. A model that fails before its first chunk hands over to the next; one that fails
after it ends the reply (its words are already out); a request the provider refuses (its 400
or 422) is the client's fault, which another model would refuse too."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage
from opentelemetry.trace import Span

from graphs.errors import InvalidInput, UpstreamError
from graphs.metrics import RETRIES, TIME_TO_FIRST_TOKEN, UPSTREAM_ERRORS
from graphs.model.accounting import ReplyInProgress, priced_call
from graphs.model.attempts import counting_attempts
from graphs.model.factory import ModelSpec
from graphs.model.pricing import PriceTable
from graphs.model.provider_calls import (
    provider_kwargs,
    provider_messages,
    provider_stream,
    provider_whole,
    refused_request,
    upstream_errors,
)
from graphs.model.reply_chunks import ReplyChunks
from graphs.model.turn import ModelCall
from graphs.telemetry.model_spans import answered, failed, model_call_span
from graphs.telemetry.tracer import observed

logger = logging.getLogger(__name__)

Emit = Callable[[AIMessageChunk], None]


@dataclass(frozen=True)
class ModelOutcome:
    """What one model's stream came to: its reply (None when it failed before its first
    chunk) and the HTTP attempts it took."""

    reply: AIMessageChunk | None
    attempts: int

    @property
    def retries(self) -> int:
        return max(0, self.attempts - 1)


async def first_answer(
    models: Sequence[tuple[ModelSpec, BaseChatModel]],
    prices: PriceTable,
    messages: list[BaseMessage],
    kwargs: dict[str, Any],
    emit: Emit,
    progress: ReplyInProgress,
    *,
    whole: bool = False,
) -> ModelCall:
    """The first model that answers, streamed, or asked for its reply `whole`; its retries
    (the SDK's HTTP attempts beyond one) and the fallback are counted."""
    retries: int | None = None
    call = provider_whole if whole else provider_stream
    for index, (spec, model) in enumerate(models):
        stream = call(
            model, provider_messages(spec, messages), provider_kwargs(spec, model, kwargs)
        )
        progress.start(spec, fallback_used=index > 0)
        replaced = models[index - 1][0].label if index else None
        if observed():
            with model_call_span(spec, messages, kwargs, replaced) as span:
                outcome = await stream_one(spec, stream, emit, progress.chunks, span)
        else:
            outcome = await stream_one(spec, stream, emit, progress.chunks)
        if outcome.attempts:
            retries = (retries or 0) + outcome.retries
            RETRIES.labels(spec.label).inc(outcome.retries)
        if outcome.reply is not None:
            progress.answered = priced_call(
                prices, spec, outcome.reply, fallback_used=index > 0, retries=retries
            )
            return progress.answered
    tried = ", ".join(spec.label for spec, _ in models)
    raise UpstreamError(f"Every model failed ({tried}).")


async def stream_one(
    spec: ModelSpec,
    stream: AsyncIterator[AIMessageChunk],
    emit: Emit,
    chunks: ReplyChunks,
    span: Span | None = None,
) -> ModelOutcome:
    """One model's reply, each chunk emitted as it arrives and kept in `chunks` (the reply in
    progress); no reply when it failed before its first chunk (the next model may answer),
    `UpstreamError` when it failed after. `span`: the call's, when it is traced."""
    started, sent = time.perf_counter(), False
    with counting_attempts(span) as attempts:
        try:
            async for chunk in stream:
                if (chunk.content or chunk.tool_call_chunks) and not sent:
                    TIME_TO_FIRST_TOKEN.labels(spec.label).observe(time.perf_counter() - started)
                    sent = True
                emit(chunk)
                chunks.append(chunk)
        except upstream_errors() as exc:
            UPSTREAM_ERRORS.labels(spec.label, type(exc).__name__).inc()
            if isinstance(exc, refused_request()):
                # The request itself is at fault (a tool schema, a parameter the model does
                # not take): another model would refuse it too, so say why.
                message = getattr(exc, "message", exc)  # the SDKs' APIError carry one
                raise InvalidInput(f"{spec.label} refused the request: {message}") from exc
            if sent:
                raise UpstreamError(f"{spec.label} failed mid-reply: {type(exc).__name__}") from exc
            logger.warning("model %s failed: %s", spec.label, type(exc).__name__)
            failed(span, type(exc).__name__)
            return ModelOutcome(None, attempts.made)
    reply = chunks.merged() if chunks else None
    if reply is not None and observed():
        answered(span, spec, reply, attempts.made)
    return ModelOutcome(reply, attempts.made)
