"""llm: the model call, streamed token by token, with fallback and an overall deadline.

Each chunk goes to the graph's custom stream as it arrives, so `/chat/stream` carries the
model's tokens rather than node updates. Retries happen inside the provider SDK; when the
primary still fails before its first token, the next model is tried. Once tokens have been sent
a failure cannot be hidden by a fallback and surfaces as `upstream_error`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

import anthropic
import httpx
import httpx2
import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    message_chunk_to_message,
)
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.types import StreamWriter
from redis.exceptions import RedisError

from graphs.errors import UpstreamError, UpstreamTimeout
from graphs.history import trim_history
from graphs.identity import principal_of
from graphs.models import ModelSpec
from graphs.runtime.attempts import counting_attempts
from graphs.runtime.cache import CachedReply, cache_lookup
from graphs.runtime.context import ChatRuntime
from graphs.runtime.metrics import CACHE, COST, FALLBACKS, RETRIES, TIME_TO_FIRST_TOKEN, TOKENS
from graphs.runtime.metrics import UPSTREAM_ERRORS as UPSTREAM_ERRORS_METRIC
from graphs.runtime.pricing import PriceTable
from graphs.state import ChatState

logger = logging.getLogger(__name__)

# What a misbehaving upstream raises: the SDKs' errors, the HTTP clients' errors mid-stream
# (openai 3.x uses httpx2, anthropic httpx), and a chunk that is not JSON.
UPSTREAM_ERRORS = (
    openai.APIError,
    anthropic.APIError,
    httpx.HTTPError,
    httpx2.HTTPError,
    json.JSONDecodeError,
)


async def stream_reply(
    spec: ModelSpec,
    model: BaseChatModel,
    prompt: Sequence[BaseMessage],
    write: StreamWriter,
    attempts: list[int],
) -> AIMessageChunk | None:
    """Stream one model's reply to `write`; None when it failed before its first token.
    Its HTTP attempts are added to `attempts[0]` (none for a model that cannot be counted)."""
    reply: AIMessageChunk | None = None
    started, tokens_sent = time.perf_counter(), False
    with counting_attempts(attempts):
        try:
            async for chunk in model.astream(list(prompt)):
                if not isinstance(chunk, AIMessageChunk):
                    continue
                if chunk.content and not tokens_sent:
                    TIME_TO_FIRST_TOKEN.labels(spec.label).observe(time.perf_counter() - started)
                    tokens_sent = True
                write(chunk)
                reply = chunk if reply is None else reply + chunk
        except UPSTREAM_ERRORS as exc:
            UPSTREAM_ERRORS_METRIC.labels(spec.label, type(exc).__name__).inc()
            if tokens_sent:
                message = f"{spec.label} failed mid-reply: {type(exc).__name__}"
                raise UpstreamError(message) from exc
            logger.warning("model %s failed: %s", spec.label, type(exc).__name__)
            return None
    return reply


async def reply_with_fallback(
    models: Sequence[tuple[ModelSpec, BaseChatModel]],
    prompt: Sequence[BaseMessage],
    write: StreamWriter,
) -> tuple[int, AIMessageChunk, int | None]:
    """The first model that answers: its index in `models`, its whole reply, and the retries
    the provider SDKs made on the way (None when no model's attempts could be counted)."""
    retries: int | None = None
    for index, (spec, model) in enumerate(models):
        attempts = [0]
        reply = await stream_reply(spec, model, prompt, write, attempts)
        if attempts[0]:
            retries = (retries or 0) + attempts[0] - 1
            RETRIES.labels(spec.label).inc(attempts[0] - 1)
        if reply is not None:
            return index, reply, retries
    tried = ", ".join(spec.label for spec, _ in models)
    raise UpstreamError(f"Every model failed ({tried}).")


@functools.cache
def warn_unpriced(model: str) -> None:
    """Once per model and process: its cost is reported as null."""
    logger.warning("no price for model %s in the pricing table; its cost is unknown", model)


def reply_metadata(
    spec: ModelSpec,
    reply: AIMessageChunk,
    *,
    fallback_used: bool,
    retries: int | None,
    prices: PriceTable,
) -> dict[str, Any]:
    """What graphgate adds to `response_metadata`: the model used, usage as the provider
    reported it, and its cost from the pricing table (None for an unpriced model)."""
    usage = reply.usage_metadata or {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    priced_model = str(reply.response_metadata.get("model_name") or spec.name)
    cost = prices.cost(priced_model, usage["input_tokens"], usage["output_tokens"])
    if cost is None:
        warn_unpriced(priced_model)
    return {
        "model": spec.label,
        "fallback_used": fallback_used,
        "retries": retries,
        "cache_hit": False,
        "usage": {key: usage[key] for key in ("input_tokens", "output_tokens", "total_tokens")},
        "cost_usd": cost,
    }


NO_USAGE = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}


async def answer_fresh(
    runtime: ChatRuntime, prompt: Sequence[BaseMessage], write: StreamWriter
) -> AIMessage:
    """The models' reply under the deadline, holding a process (and cluster) slot."""
    timeout = runtime.settings.request_timeout
    try:
        async with asyncio.timeout(timeout), runtime.slots.hold():
            index, reply, retries = await reply_with_fallback(runtime.models, prompt, write)
    except TimeoutError as exc:
        raise UpstreamTimeout(
            f"The model did not answer within REQUEST_TIMEOUT={timeout:g} s."
        ) from exc
    spec = runtime.models[index][0]
    metadata = reply_metadata(
        spec, reply, fallback_used=index > 0, retries=retries, prices=runtime.prices
    )
    record_reply_metrics(metadata)
    # The last chunk of the stream carries graphgate's metadata, so a streamed reply adds up
    # to the same message as an invoked one.
    write(AIMessageChunk(content="", id=reply.id, response_metadata=metadata))
    message = message_chunk_to_message(reply)
    message.response_metadata.update(metadata)
    assert isinstance(message, AIMessage)
    return message


def record_reply_metrics(metadata: dict[str, Any]) -> None:
    model, usage = metadata["model"], metadata["usage"]
    TOKENS.labels(model, "input").inc(usage["input_tokens"])
    TOKENS.labels(model, "output").inc(usage["output_tokens"])
    if metadata["cost_usd"]:
        COST.labels(model).inc(metadata["cost_usd"])
    if metadata["fallback_used"]:
        FALLBACKS.labels(model).inc()


def replay_cached(cached: CachedReply, write: StreamWriter) -> AIMessage:
    """A cached reply, streamed word by word like a fresh one; it used no upstream tokens."""
    reply_id = f"cached-{uuid.uuid4()}"
    content = str(cached["content"])
    for token in re.findall(r"\s*\S+", content):
        write(AIMessageChunk(content=token, id=reply_id))
    metadata = {
        "model": cached["model"],
        "fallback_used": False,
        "cache_hit": True,
        "usage": dict(NO_USAGE),
        "cost_usd": 0.0,
    }
    write(AIMessageChunk(content="", id=reply_id, response_metadata=metadata))
    return AIMessage(
        content=content, id=reply_id, response_metadata=metadata, usage_metadata=NO_USAGE
    )


CACHE_ERRORS = (RedisError, OSError, *UPSTREAM_ERRORS)
# Not a principal name (':' is not allowed in one), so no principal shares the global scope.
GLOBAL_SCOPE = ":global"


def make_llm(runtime: ChatRuntime) -> Any:
    settings = runtime.settings
    models = [model for _, model in runtime.models]

    async def llm(state: ChatState, config: RunnableConfig) -> dict[str, Any]:
        history = trim_history(state.get("history", []), settings.max_history_messages)
        prompt = [*history, *state["turn"]]
        write = get_stream_writer()
        if runtime.cache is None:
            return {"reply": await answer_fresh(runtime, prompt, write)}
        cache = runtime.cache
        scope = principal_of(config) if settings.cache_scope == "principal" else GLOBAL_SCOPE
        lookup = cache_lookup(scope, models, prompt)
        # The cache is an optimisation: when it (or its embeddings) fails, answer fresh.
        cached = None
        try:
            cached = await cache.get(lookup)
        except CACHE_ERRORS as exc:
            logger.warning("cache lookup failed (%s); answering fresh", type(exc).__name__)
        CACHE.labels("miss" if cached is None else "hit").inc()
        if cached is not None:
            return {"reply": replay_cached(cached, write)}
        message = await answer_fresh(runtime, prompt, write)
        if isinstance(message.content, str):
            entry = {"content": message.content, "model": message.response_metadata["model"]}
            try:
                await cache.put(lookup, entry)
            except CACHE_ERRORS as exc:
                logger.warning("cache store failed (%s)", type(exc).__name__)
        return {"reply": message}

    return llm
