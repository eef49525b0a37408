"""graphgate's model: the `BaseChatModel` every route's chain receives.

One call of it is one answer from the configured models: the input bound to `MAX_INPUT_TOKENS`,
the LLM cache, a process (and cluster) concurrency slot, the provider SDK's retries, fallback
to the next model when one fails before its first token, and the usage, cost, retries and
metrics of the call added to the running turn (`graphs/model/turn.py`). A chain may call it
any number of times; the llm node puts the turn's deadline around the whole chain.

The provider stream runs in a task of its own that feeds this model's stream: the attempt
counter and the concurrency slot then live in one task's context from start to end, whenever
and wherever the consumer stops reading, and the task puts its call in the turn however it
ends (answered, or cut short and counted as partial).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessageChunk, BaseMessage, message_chunk_to_message
from langchain_core.messages.ai import add_ai_message_chunks
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, ensure_config
from langchain_core.runnables.config import var_child_runnable_config
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, PrivateAttr

from graphs.cache.reply_cache import CacheLookup, cache_lookup
from graphs.errors import InvalidInput, UpstreamError, refuse_too_long
from graphs.metrics import (
    CACHE,
    COST,
    FALLBACKS,
    PARTIAL_TOKENS,
    RETRIES,
    TIME_TO_FIRST_TOKEN,
    TOKENS,
    UPSTREAM_ERRORS,
)
from graphs.model.attempts import counting_attempts
from graphs.model.factory import ModelSpec
from graphs.model.provider_calls import (
    TOOL_KWARGS,
    provider_kwargs,
    provider_messages,
    provider_stream,
    refused_request,
    upstream_errors,
)
from graphs.model.turn import NO_USAGE, ModelCall, Turn, current_turn
from graphs.route_services import ChatRuntime
from graphs.run_facts import facts_of
from graphs.store.redis_client import REDIS_FAILURES

logger = logging.getLogger(__name__)


def cache_errors() -> tuple[type[Exception], ...]:
    """What a cache lookup or store may fail with (Redis, or a remote embeddings model); the
    turn goes on without the cache."""
    return (*REDIS_FAILURES, *upstream_errors())


# The provider's words for why a reply ended (OpenAI's, then Anthropic's): a cached reply keeps
# them.
REPLY_ENDINGS = frozenset({"finish_reason", "stop_reason", "stop_sequence"})
# Not a principal name (':' is not allowed in one), so no principal shares the global scope.
GLOBAL_SCOPE = ":global"


@functools.cache
def warn_unpriced(model: str) -> None:
    """Once per model and process: its cost is reported as null."""
    logger.warning("no price for model %s in the pricing table; its cost is unknown", model)


class Finished:
    """The producer's last word: the call that answered, after its final chunk."""

    def __init__(self, call: ModelCall) -> None:
        self.call = call


@dataclass
class ReplyInProgress:
    """The reply of the model answering now, as it streams: paid for even if it never ends."""

    spec: ModelSpec | None = None
    fallback_used: bool = False
    chunks: list[AIMessageChunk] = field(default_factory=list)
    answered: ModelCall | None = None

    def start(self, spec: ModelSpec, fallback_used: bool) -> None:
        self.spec, self.fallback_used, self.chunks = spec, fallback_used, []


class GatewayChatModel(BaseChatModel):
    """The configured models behind graphgate's controls, as one LangChain chat model."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    _runtime: ChatRuntime = PrivateAttr()

    def __init__(self, runtime: ChatRuntime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._runtime = runtime

    @property
    def runtime(self) -> ChatRuntime:
        return self._runtime

    @property
    def _llm_type(self) -> str:
        return "graphgate"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"models": [spec.label for spec, _ in self.runtime.models]}

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[LanguageModelInput, Any]:
        """Tools in OpenAI's format; each provider converts them to its own on the call."""
        return self.bind(tools=[convert_to_openai_tool(tool) for tool in tools], **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        raise NotImplementedError("graphgate's model is async: use ainvoke or astream.")

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # One merge here, not chunk by chunk in an executor thread as `agenerate_from_stream`
        # does: the thread hop and a generation object per token cost more than the merge.
        chunks = [chunk async for chunk in self._reply(messages, stop, kwargs)]
        if not chunks:
            raise UpstreamError("The model's reply was empty.")
        reply = message_chunk_to_message(add_ai_message_chunks(*chunks))
        return ChatResult(generations=[ChatGeneration(message=reply)])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        async for chunk in self._reply(messages, stop, kwargs):
            yield ChatGenerationChunk(message=chunk)

    async def _reply(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> AsyncIterator[AIMessageChunk]:
        """One answer's chunks: from the cache, or from the first model that answers."""
        turn = current_turn() or Turn(facts_of(ensure_config()).principal)
        call_kwargs = self._call_kwargs(turn, stop, kwargs)
        prompt_tokens = self._check_size(messages, call_kwargs.get("tools"))
        lookup = self._lookup(turn, messages, call_kwargs)
        cached = await self._cached(lookup)
        if cached is not None:
            for chunk in self._replay(cached):
                yield chunk
            turn.calls.append(ModelCall(str(cached["model"]), dict(NO_USAGE), 0.0, cache_hit=True))
            return
        chunks: list[AIMessageChunk] = []
        finished: list[ModelCall] = []
        async for chunk in self._answer(messages, call_kwargs, finished, (turn, prompt_tokens)):
            if lookup is not None:
                chunks.append(chunk)
            yield chunk
        if lookup is not None and chunks and finished:
            await self._store(lookup, add_ai_message_chunks(*chunks), finished[0].model)

    def _check_size(self, messages: Sequence[BaseMessage], tools: Any) -> int:
        """The prompt's tokens, its tools' definitions included, within `MAX_INPUT_TOKENS`."""
        limit = self.runtime.settings.max_input_tokens
        counter = self.runtime.counter
        tokens = counter.count_messages(messages) + counter.count_tools(tools or [])
        refuse_too_long(tokens, limit, "The prompt")
        return tokens

    def _call_kwargs(
        self, turn: Turn, stop: list[str] | None, bound: dict[str, Any]
    ) -> dict[str, Any]:
        """The chain's own parameters, overridden by the request's, then the request's tools;
        `max_tokens` at most `MAX_OUTPUT_TOKENS`, which it is when nobody set it."""
        ceiling = self.runtime.settings.max_output_tokens
        kwargs = {**bound, **({"stop": stop} if stop else {})}
        kwargs.update(turn.params.call_kwargs())
        kwargs["max_tokens"] = min(int(kwargs.get("max_tokens") or ceiling), ceiling)
        if turn.tools.tools:
            kwargs.update(tools=list(turn.tools.tools), tool_choice=turn.tools.tool_choice)
            kwargs["parallel_tool_calls"] = turn.tools.parallel_tool_calls
        if turn.tools.response_format is not None:
            kwargs["response_format"] = turn.tools.response_format
        return {key: value for key, value in kwargs.items() if value is not None}

    def _lookup(
        self, turn: Turn, messages: Sequence[BaseMessage], kwargs: dict[str, Any]
    ) -> CacheLookup | None:
        """The cache lookup of a plain-text call; tool and structured calls are not cached."""
        if self.runtime.cache is None or any(
            k in kwargs for k in (*TOOL_KWARGS, "response_format")
        ):
            return None
        settings = self.runtime.settings
        scope = turn.principal if settings.cache_scope == "principal" else GLOBAL_SCOPE
        models = [model for _, model in self.runtime.models]
        return cache_lookup(scope, models, messages, kwargs)

    async def _cached(self, lookup: CacheLookup | None) -> dict[str, Any] | None:
        """The cached reply, if any; a failing cache (or its embeddings) means answer fresh."""
        if lookup is None or self.runtime.cache is None:
            return None
        cached = None
        try:
            cached = await self.runtime.cache.get(lookup)
        except cache_errors() as exc:
            logger.warning("cache lookup failed (%s); answering fresh", type(exc).__name__)
        CACHE.labels("miss" if cached is None else "hit").inc()
        return cached

    async def _store(self, lookup: CacheLookup, reply: AIMessageChunk, model: str) -> None:
        if (
            self.runtime.cache is None
            or reply.tool_call_chunks
            or not isinstance(reply.content, str)
        ):
            return
        # Why the reply ended ("length", "content_filter", ...) is part of the answer.
        ending = {k: v for k, v in reply.response_metadata.items() if k in REPLY_ENDINGS}
        entry = {"content": reply.content, "model": model, "response_metadata": ending}
        try:
            await self.runtime.cache.put(lookup, entry)
        except cache_errors() as exc:
            logger.warning("cache store failed (%s)", type(exc).__name__)

    @staticmethod
    def _replay(cached: dict[str, Any]) -> list[AIMessageChunk]:
        """A cached reply, word by word like a fresh one, its text byte for byte (whitespace
        included) and its finish reason kept; it used no upstream tokens."""
        reply_id = f"cached-{uuid.uuid4()}"
        words = re.findall(r"\s*\S+|\s+", str(cached["content"]))
        chunks = [AIMessageChunk(content=word, id=reply_id) for word in words]
        final = AIMessageChunk(
            content="",
            id=reply_id,
            usage_metadata=dict(NO_USAGE),
            response_metadata=dict(cached.get("response_metadata") or {}),
        )
        return [*chunks, final]

    async def _answer(
        self,
        messages: list[BaseMessage],
        kwargs: dict[str, Any],
        finished: list[ModelCall],
        turn: tuple[Turn, int],
    ) -> AsyncIterator[AIMessageChunk]:
        """The provider's chunks as they arrive, from a producer task (see the module doc);
        the call that answered goes to `finished` at the end. `turn`: the turn and the prompt's
        tokens, for the producer to count a reply cut short."""
        queue: asyncio.Queue[AIMessageChunk | Finished | BaseException] = asyncio.Queue()
        # The provider call is this model's own run, not a child chat-model run whose tokens
        # `astream_events` would report a second time: it runs outside the chain's run config.
        context = contextvars.copy_context()
        context.run(var_child_runnable_config.set, None)
        producer = asyncio.create_task(
            self._produce(messages, kwargs, queue, turn), context=context
        )
        turn[0].producing(producer)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, Finished):
                    finished.append(item.call)
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
        messages: list[BaseMessage],
        kwargs: dict[str, Any],
        queue: asyncio.Queue[AIMessageChunk | Finished | BaseException],
        turn: tuple[Turn, int],
    ) -> None:
        progress = ReplyInProgress()
        try:
            async with self.runtime.slots.hold():
                call = await self._first_answer(messages, kwargs, queue.put_nowait, progress)
            queue.put_nowait(Finished(call))
        except Exception as exc:  # noqa: BLE001 - not swallowed: the consumer re-raises it
            queue.put_nowait(exc)
        finally:
            # The producer itself puts the call in the turn, however it ended: its consumer may
            # be gone before reading the end.
            self._account(progress, *turn)

    def _account(self, progress: ReplyInProgress, turn: Turn, prompt_tokens: int) -> None:
        """The call joins the turn: answered, or cut short (a failure, a deadline, a client
        gone) and paid for as far as it went, marked partial. A reply cut short counts the
        larger of what the provider reported (it may report early, as Anthropic's first event
        does) and tiktoken's count of the prompt and of what streamed."""
        if progress.answered is not None:
            turn.calls.append(progress.answered)
            return
        if progress.spec is None or not progress.chunks:
            return
        reply = add_ai_message_chunks(*progress.chunks)
        streamed = reply.text + "".join(
            str(chunk.get("args") or "") for chunk in reply.tool_call_chunks
        )
        reported: dict[str, Any] = dict(reply.usage_metadata or {})
        input_tokens = max(int(reported.get("input_tokens") or 0), prompt_tokens)
        output_tokens = max(
            int(reported.get("output_tokens") or 0), self.runtime.counter.count_text(streamed)
        )
        reply.usage_metadata = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        }
        turn.calls.append(
            self._priced(
                progress.spec,
                reply,
                fallback_used=progress.fallback_used,
                retries=None,
                partial=True,
            )
        )

    async def _first_answer(
        self,
        messages: list[BaseMessage],
        kwargs: dict[str, Any],
        emit: Callable[[AIMessageChunk], None],
        progress: ReplyInProgress,
    ) -> ModelCall:
        """The first model that answers; its retries (the SDK's HTTP attempts beyond one) and
        the fallback are counted."""
        retries: int | None = None
        for index, (spec, model) in enumerate(self.runtime.models):
            attempts = [0]
            stream = provider_stream(
                model, provider_messages(spec, messages), provider_kwargs(spec, model, kwargs)
            )
            progress.start(spec, fallback_used=index > 0)
            reply = await self._stream_one(spec, stream, emit, attempts, progress.chunks)
            if attempts[0]:
                retries = (retries or 0) + attempts[0] - 1
                RETRIES.labels(spec.label).inc(attempts[0] - 1)
            if reply is not None:
                progress.answered = self._priced(
                    spec, reply, fallback_used=index > 0, retries=retries
                )
                return progress.answered
        tried = ", ".join(spec.label for spec, _ in self.runtime.models)
        raise UpstreamError(f"Every model failed ({tried}).")

    @staticmethod
    async def _stream_one(
        spec: ModelSpec,
        stream: AsyncIterator[AIMessageChunk],
        emit: Callable[[AIMessageChunk], None],
        attempts: list[int],
        chunks: list[AIMessageChunk],
    ) -> AIMessageChunk | None:
        """One model's reply, each chunk emitted as it arrives and kept in `chunks`; None when
        it failed before its first chunk (the next model may answer), `UpstreamError` when it
        failed after."""
        started, sent = time.perf_counter(), False
        with counting_attempts(attempts):
            try:
                async for chunk in stream:
                    if (chunk.content or chunk.tool_call_chunks) and not sent:
                        TIME_TO_FIRST_TOKEN.labels(spec.label).observe(
                            time.perf_counter() - started
                        )
                        sent = True
                    emit(chunk)
                    chunks.append(chunk)
            except upstream_errors() as exc:
                UPSTREAM_ERRORS.labels(spec.label, type(exc).__name__).inc()
                if isinstance(exc, refused_request()):
                    # The request itself is at fault (a tool schema, a parameter the model
                    # does not take): another model would refuse it too, so say why.
                    message = getattr(exc, "message", exc)  # the SDKs' APIError carry one
                    raise InvalidInput(f"{spec.label} refused the request: {message}") from exc
                if sent:
                    raise UpstreamError(
                        f"{spec.label} failed mid-reply: {type(exc).__name__}"
                    ) from exc
                logger.warning("model %s failed: %s", spec.label, type(exc).__name__)
                return None
        return add_ai_message_chunks(*chunks) if chunks else None

    def _priced(
        self,
        spec: ModelSpec,
        reply: AIMessageChunk,
        *,
        fallback_used: bool,
        retries: int | None,
        partial: bool = False,
    ) -> ModelCall:
        """The call's usage as the provider reported it (or as counted, for a reply cut short),
        priced from the table (None for an unpriced model), counted in the metrics."""
        reported: dict[str, Any] = dict(reply.usage_metadata or NO_USAGE)
        usage = {key: int(reported.get(key) or 0) for key in NO_USAGE}
        priced_model = str(reply.response_metadata.get("model_name") or spec.name)
        cost = self.runtime.prices.cost(priced_model, usage["input_tokens"], usage["output_tokens"])
        if cost is None:
            warn_unpriced(priced_model)
        for counter in (TOKENS, *([PARTIAL_TOKENS] if partial else [])):
            counter.labels(spec.label, "input").inc(usage["input_tokens"])
            counter.labels(spec.label, "output").inc(usage["output_tokens"])
        if cost:
            COST.labels(spec.label).inc(cost)
        if fallback_used:
            FALLBACKS.labels(spec.label).inc()
        return ModelCall(
            spec.label, usage, cost, fallback_used=fallback_used, retries=retries, partial=partial
        )
