"""graphgate's replies in OpenAI's shapes, built with the `openai` package's own models: a chat
completion, and the chunks of its stream (text and tool-call deltas)."""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from langchain_core.messages import AIMessage, AIMessageChunk
from openai.types import CompletionUsage
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    ChatCompletionMessageFunctionToolCall,
)
from openai.types.chat.chat_completion import Choice
from openai.types.chat.chat_completion_chunk import Choice as ChunkChoice
from openai.types.chat.chat_completion_chunk import (
    ChoiceDelta,
    ChoiceDeltaToolCall,
    ChoiceDeltaToolCallFunction,
)
from openai.types.chat.chat_completion_message_function_tool_call import Function

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]
PROVIDER_FINISH: dict[str, FinishReason] = {
    "length": "length",
    "max_tokens": "length",  # Anthropic's name
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "tool_use": "tool_calls",  # Anthropic's name
}


def completion_usage(metadata: dict[str, Any]) -> CompletionUsage:
    usage = metadata.get("usage") or {}
    return CompletionUsage(
        prompt_tokens=usage.get("input_tokens", 0),
        completion_tokens=usage.get("output_tokens", 0),
        total_tokens=usage.get("total_tokens", 0),
    )


def finish_reason(metadata: dict[str, Any], *, has_tool_calls: bool) -> FinishReason:
    if has_tool_calls:
        return "tool_calls"
    reason = metadata.get("finish_reason") or metadata.get("stop_reason")
    return PROVIDER_FINISH.get(str(reason), "stop")


def completion(reply: AIMessage, completion_id: str, fallback_model: str) -> ChatCompletion:
    metadata = reply.response_metadata
    tool_calls = [
        ChatCompletionMessageFunctionToolCall(
            id=call["id"] or "",
            type="function",
            function=Function(name=call["name"], arguments=json.dumps(call["args"])),
        )
        for call in reply.tool_calls
    ]
    message = ChatCompletionMessage(
        role="assistant", content=reply.text or None, tool_calls=tool_calls or None
    )
    return ChatCompletion(
        id=completion_id,
        object="chat.completion",
        created=int(time.time()),
        model=str(metadata.get("model", fallback_model)),
        choices=[
            Choice(
                index=0,
                message=message,
                finish_reason=finish_reason(metadata, has_tool_calls=bool(tool_calls)),
            )
        ],
        usage=completion_usage(metadata),
    )


class CompletionStream:
    """The chunks of one streamed completion, as SSE `data:` lines."""

    def __init__(self, completion_id: str, model: str) -> None:
        self.completion_id = completion_id
        self.model = model
        self.created = int(time.time())
        self.saw_tool_calls = False
        # OpenAI numbers a reply's tool calls 0, 1, ...; a provider may number content blocks
        # (Anthropic: a text block first makes the first call 1).
        self._call_numbers: dict[int, int] = {}

    def _sse(self, chunk: ChatCompletionChunk) -> bytes:
        return f"data: {chunk.model_dump_json(exclude_unset=True)}\n\n".encode()

    def _chunk(self, choices: list[ChunkChoice], **extra: Any) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=self.completion_id,
            object="chat.completion.chunk",
            created=self.created,
            model=self.model,
            choices=choices,
            **extra,
        )

    def delta(self, delta: ChoiceDelta, finish: FinishReason | None = None) -> bytes:
        return self._sse(self._chunk([ChunkChoice(index=0, delta=delta, finish_reason=finish)]))

    def _number(self, provider_index: int) -> int:
        return self._call_numbers.setdefault(provider_index, len(self._call_numbers))

    def opening(self) -> bytes:
        return self.delta(ChoiceDelta(role="assistant", content=""))

    def message_chunk(self, chunk: AIMessageChunk) -> bytes | None:
        """The text and tool-call deltas of a model chunk; None when it has neither."""
        calls = [
            ChoiceDeltaToolCall(
                index=self._call_numbers.setdefault(
                    call.get("index") or 0, len(self._call_numbers)
                ),
                id=call.get("id"),
                type="function" if call.get("id") else None,
                function=ChoiceDeltaToolCallFunction(
                    name=call.get("name"), arguments=call.get("args") or ""
                ),
            )
            for call in chunk.tool_call_chunks
        ]
        if not calls and not chunk.text:
            return None
        self.saw_tool_calls = self.saw_tool_calls or bool(calls)
        if calls:
            return self.delta(ChoiceDelta(content=chunk.text or None, tool_calls=calls))
        return self.delta(ChoiceDelta(content=chunk.text))

    def closing(self, metadata: dict[str, Any]) -> bytes:
        return self.delta(
            ChoiceDelta(), finish_reason(metadata, has_tool_calls=self.saw_tool_calls)
        )

    def usage(self, metadata: dict[str, Any]) -> bytes:
        return self._sse(self._chunk([], usage=completion_usage(metadata)))
