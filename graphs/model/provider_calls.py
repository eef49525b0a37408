"""One provider model's call, as graphgate's model makes it: the keyword arguments the provider
takes (tools converted by its own `bind_tools`, OpenAI's `tool_choice` translated for
Anthropic), the messages it accepts (Anthropic: one system prompt), its own stream, and the
errors a misbehaving or refusing upstream raises."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import httpx2
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, SystemMessage

from graphs.errors import UnsupportedParameter
from graphs.model.factory import ModelSpec


def sdk_errors(*names: str) -> tuple[type[Exception], ...]:
    """The provider SDKs' exception classes of these names. A provider's SDK is imported only
    when a model uses it (`graphs/model/factory.py`; openai's also for `/v1`'s types): until
    then it can raise nothing."""
    sdks = [sys.modules[sdk] for sdk in ("openai", "anthropic") if sdk in sys.modules]
    return tuple(getattr(sdk, name) for sdk in sdks for name in names)


def upstream_errors() -> tuple[type[Exception], ...]:
    """What a misbehaving upstream raises: the SDKs' errors, the HTTP clients' errors
    mid-stream (openai 3.x uses httpx2, anthropic httpx), and a chunk that is not JSON."""
    return (*sdk_errors("APIError"), httpx.HTTPError, httpx2.HTTPError, json.JSONDecodeError)


def refused_request() -> tuple[type[Exception], ...]:
    """What a provider answers 400 or 422 with."""
    return sdk_errors("BadRequestError", "UnprocessableEntityError")


TOOL_KWARGS = ("tools", "tool_choice", "parallel_tool_calls")
# Keyword arguments a provider has no use for: Anthropic has no seed.
UNSENT = {"anthropic": ("seed",)}


def provider_kwargs(
    spec: ModelSpec, model: BaseChatModel, kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The call's keyword arguments as `model` takes them: its tools converted by its own
    `bind_tools`, what its provider has no use for left out."""
    kwargs = {k: v for k, v in kwargs.items() if k not in UNSENT.get(spec.provider, ())}
    tool_kwargs = {k: kwargs.pop(k) for k in TOOL_KWARGS if kwargs.get(k) is not None}
    if spec.provider == "anthropic" and "tool_choice" in tool_kwargs:
        tool_kwargs["tool_choice"] = anthropic_tool_choice(tool_kwargs["tool_choice"])
    if not tool_kwargs.get("tools"):
        return kwargs
    try:
        bound = model.bind_tools(tool_kwargs.pop("tools"), **tool_kwargs)
    except NotImplementedError:
        raise UnsupportedParameter("tools", f"the model {spec.label} cannot call tools") from None
    return {**getattr(bound, "kwargs", {}), **kwargs}


async def provider_stream(
    model: BaseChatModel, messages: list[BaseMessage], kwargs: dict[str, Any]
) -> AsyncIterator[AIMessageChunk]:
    """The provider model's own stream (`_astream`, the method each provider implements),
    without `astream`'s second run around it: its callbacks, its per-token events and its
    chunk-by-chunk merge cost about 5 ms of CPU per turn (measured with the demo model) and
    nobody reads them; this model's own run reports the call. What `astream` adds that
    clients rely on is kept: the generation info (the finish reason) in `response_metadata`,
    and a last chunk marked `chunk_position="last"` (tool-call arguments are parsed on it)."""
    last: AIMessageChunk | None = None
    async for generation in model._astream(messages, **kwargs):
        chunk = generation.message
        if not isinstance(chunk, AIMessageChunk):
            continue
        if generation.generation_info:
            chunk.response_metadata = {**generation.generation_info, **chunk.response_metadata}
        last = chunk
        yield chunk
    if last is not None and not last.chunk_position:
        yield AIMessageChunk(
            content="" if isinstance(last.content, str) else [], chunk_position="last"
        )


async def provider_whole(
    model: BaseChatModel, messages: list[BaseMessage], kwargs: dict[str, Any]
) -> AsyncIterator[AIMessageChunk]:
    """The provider model's reply asked for whole (`_agenerate`, no stream): one response to
    parse instead of one chunk per token, as one chunk marked last. Nothing reaches the caller
    before the whole reply, so a failed call delivered nothing and is retried or falls back
    whole; `LLM_ATTEMPT_TIMEOUT` bounds its wait for the response."""
    result = await model._agenerate(messages, **kwargs)
    generation = result.generations[0]
    if not isinstance(generation.message, AIMessage):
        return
    chunk = chunk_of(generation.message)
    # What `agenerate` adds for its callers: the call's output (the model's name) and the
    # generation's info (the finish reason) in the message's metadata.
    added = {**(result.llm_output or {}), **(generation.generation_info or {})}
    chunk.response_metadata = {**added, **chunk.response_metadata}
    chunk.chunk_position = "last"
    yield chunk


def chunk_of(message: AIMessage) -> AIMessageChunk:
    """A whole AI message as one chunk of itself (its tool calls as their chunks)."""
    return AIMessageChunk(
        content=message.content,
        id=message.id,
        name=message.name,
        tool_calls=message.tool_calls,
        invalid_tool_calls=message.invalid_tool_calls,
        usage_metadata=message.usage_metadata,
        response_metadata=message.response_metadata,
        additional_kwargs=message.additional_kwargs,
    )


def anthropic_tool_choice(choice: str | dict[str, Any]) -> str | dict[str, Any]:
    """OpenAI's `tool_choice` in the form langchain-anthropic's `bind_tools` takes."""
    if choice == "required":
        return "any"
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return str(choice["function"].get("name", ""))
    return choice


def provider_messages(spec: ModelSpec, messages: list[BaseMessage]) -> list[BaseMessage]:
    """The messages as the provider accepts them. Anthropic takes one system prompt, first:
    the route prompt's system message and a client's own (a `/v1` conversation usually has
    one) are joined into it, in order."""
    systems = [m for m in messages if isinstance(m, SystemMessage)]
    if spec.provider != "anthropic" or not systems:
        return messages
    if len(systems) == 1 and messages[0] is systems[0]:
        return messages
    joined = SystemMessage("\n\n".join(m.text for m in systems if m.text))
    return [joined, *(m for m in messages if not isinstance(m, SystemMessage))]
