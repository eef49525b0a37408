"""graphgate's model: the `BaseChatModel` every route's chain receives.

One call of it is one answer from the configured models: the input bound to `MAX_INPUT_TOKENS`,
the LLM cache, a process (and cluster) concurrency slot, the provider SDK's retries, fallback
to the next model when one fails before its first token, and the usage, cost, retries and
metrics of the call added to the running turn (`graphs/model/turn.py`). A chain may call it
any number of times; the llm node puts the turn's deadline around the whole chain.

This module is the LangChain adapter; the task an answer streams from is
`graphs/model/answer_stream.py`, the cache `graphs/model/cached_replies.py`, the fallback with
retries `graphs/model/fallback.py`, a call's accounting `graphs/model/accounting.py`, and a call
that nobody observes, which skips LangChain's run, `graphs/model/unobserved.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    message_chunk_to_message,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig, ensure_config
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.utils import LC_ID_PREFIX
from pydantic import ConfigDict, PrivateAttr

from graphs.errors import UpstreamError, refuse_too_long
from graphs.model.answer_stream import AnswerStream
from graphs.model.cached_replies import CachedReplies, replay
from graphs.model.lone_call import accounted_alone
from graphs.model.params import read_params
from graphs.model.reply_chunks import ReplyChunks
from graphs.model.turn import NO_USAGE, ModelCall, Turn, current_turn
from graphs.model.unobserved import nobody_observes, provider_bound
from graphs.route_services import RouteServices
from graphs.run_facts import facts_of


class GatewayChatModel(BaseChatModel):
    """The configured models behind graphgate's controls, as one LangChain chat model."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    _services: RouteServices = PrivateAttr()
    _cache: CachedReplies = PrivateAttr()

    def __init__(self, services: RouteServices, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._services = services
        self._cache = CachedReplies(services)

    @property
    def services(self) -> RouteServices:
        return self._services

    @property
    def _llm_type(self) -> str:
        return "graphgate"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"models": [spec.label for spec, _ in self.services.models]}

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

    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        config = ensure_config(config)
        if not nobody_observes(config, self):
            return await super().ainvoke(input, config, stop=stop, **kwargs)
        messages = self._convert_input(input).to_messages()
        reply = await self._whole_reply(messages, stop, provider_bound(kwargs), config)
        reply.id = reply.id or f"{LC_ID_PREFIX}-{uuid.uuid4()}"
        return reply

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        """The reply's chunks; with no run at all around them when nobody observes it
        (`graphs/model/unobserved.py`)."""
        config = ensure_config(config)
        if not nobody_observes(config, self):
            async for chunk in super().astream(input, config, stop=stop, **kwargs):
                yield chunk
            return
        run_id = f"{LC_ID_PREFIX}-{uuid.uuid4()}"
        messages = self._convert_input(input).to_messages()
        async for chunk in self._reply(messages, stop, provider_bound(kwargs), config):
            if chunk.id is None:
                chunk.id = run_id
            yield chunk

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = await self._whole_reply(messages, stop, kwargs)
        return ChatResult(generations=[ChatGeneration(message=reply)])

    async def _whole_reply(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
        config: RunnableConfig | None = None,
    ) -> AIMessage:
        # One merge here, not chunk by chunk in an executor thread as `agenerate_from_stream`
        # does: the thread hop and a generation object per token cost more than the merge.
        # Nobody reads this reply's tokens: the provider is asked for it whole, unless
        # `STREAM_UPSTREAM_ON_INVOKE` says otherwise.
        whole = not self.services.settings.stream_upstream_on_invoke
        chunks = ReplyChunks()
        async for chunk in self._reply(messages, stop, kwargs, config, whole=whole):
            chunks.append(chunk)
        if not chunks:
            raise UpstreamError("The model's reply was empty.")
        reply = message_chunk_to_message(chunks.merged())
        assert isinstance(reply, AIMessage)
        return reply

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        async for chunk in self._reply(messages, stop, kwargs):
            yield ChatGenerationChunk(message=chunk)

    def _reply(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
        config: RunnableConfig | None = None,
        *,
        whole: bool = False,
    ) -> AsyncIterator[AIMessageChunk]:
        """One answer's chunks (one, when the provider is asked for it `whole`), for the
        running turn, or as a turn of its own when none runs (`graphs/model/lone_call.py`),
        whose facts `config` (else the running one) carries."""
        turn = current_turn()
        if turn is not None:
            return self._answer(turn, messages, stop, kwargs, whole)
        config = config or ensure_config()
        facts = facts_of(config)
        ceiling = self.services.settings.max_output_tokens
        params = facts.params or read_params(config.get("configurable", {}), ceiling)
        alone = Turn(facts.principal, params)
        answer = self._answer(alone, messages, stop, kwargs, whole)
        return accounted_alone(self.services, alone, answer)

    async def _answer(
        self,
        turn: Turn,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
        whole: bool,
    ) -> AsyncIterator[AIMessageChunk]:
        """One answer's chunks: from the cache, or from the first model that answers."""
        call_kwargs = self._call_kwargs(turn, stop, kwargs)
        prompt_tokens = self._check_size(messages, call_kwargs.get("tools"))
        lookup = self._cache.lookup(turn.principal, messages, call_kwargs)
        cached = await self._cache.get(lookup)
        if cached is not None:
            for chunk in replay(cached):
                yield chunk
            turn.calls.append(ModelCall(str(cached["model"]), dict(NO_USAGE), 0.0, cache_hit=True))
            return
        answer = AnswerStream(self.services, messages, call_kwargs, whole=whole)
        chunks = ReplyChunks()
        async for chunk in answer.chunks(turn, prompt_tokens):
            if lookup is not None:
                chunks.append(chunk)
            yield chunk
        if lookup is not None and chunks and answer.call is not None:
            await self._cache.store(lookup, chunks.merged(), answer.call.model)

    def _check_size(self, messages: Sequence[BaseMessage], tools: Any) -> int:
        """The prompt's tokens, its tools' definitions included, within `MAX_INPUT_TOKENS`."""
        limit = self.services.settings.max_input_tokens
        counter = self.services.counter
        tokens = counter.count_messages(messages) + counter.count_tools(tools or [])
        refuse_too_long(tokens, limit, "The prompt")
        return tokens

    def _call_kwargs(
        self, turn: Turn, stop: list[str] | None, bound: dict[str, Any]
    ) -> dict[str, Any]:
        """The chain's own parameters, overridden by the request's, then the request's tools;
        `max_tokens` at most `MAX_OUTPUT_TOKENS`, which it is when nobody set it."""
        ceiling = self.services.settings.max_output_tokens
        kwargs = {**bound, **({"stop": stop} if stop else {})}
        kwargs.update(turn.params.call_kwargs())
        kwargs["max_tokens"] = min(int(kwargs.get("max_tokens") or ceiling), ceiling)
        if turn.tools.tools:
            kwargs.update(tools=list(turn.tools.tools), tool_choice=turn.tools.tool_choice)
            kwargs["parallel_tool_calls"] = turn.tools.parallel_tool_calls
        if turn.tools.response_format is not None:
            kwargs["response_format"] = turn.tools.response_format
        return {key: value for key, value in kwargs.items() if value is not None}
