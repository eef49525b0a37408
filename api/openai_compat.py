"""An OpenAI-compatible endpoint (`/v1/chat/completions`, `/v1/models`) in front of the same
chat graph, so the `openai` SDKs and the tools built on them can use graphgate unchanged.

The same guard, limits, budgets, cache, usage and memory apply. OpenAI's API is stateless: a
client sends the whole conversation. With a session (the `X-Session-Id` header, else the `user`
field) graphgate keeps the history itself, and the client sends only the new message(s).
Errors use OpenAI's format, `{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from pydantic import BaseModel, Field

from api.admission import admit_turns, admitted_configurable
from api.chat_runnable import SESSION_ID, ChatRequest, ChatRunnable
from graphs.errors import GraphgateError
from middleware.context import request_context
from middleware.error_responses import openai_stream_error

router = APIRouter(prefix="/v1", tags=["openai"])

SESSION_HEADER = "x-session-id"
MODEL_ID = "graphgate"


class ContentPart(BaseModel):
    type: str
    text: str = ""


class Message(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] = ""

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if part.type == "text")

    def to_langchain(self) -> BaseMessage:
        if self.role == "user":
            return HumanMessage(self.text())
        if self.role == "assistant":
            return AIMessage(self.text())
        return SystemMessage(self.text())


class StreamOptions(BaseModel):
    include_usage: bool = False


class CompletionRequest(BaseModel):
    model: str = MODEL_ID
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None


def usage_of(metadata: dict[str, Any]) -> dict[str, int]:
    usage = metadata.get("usage") or {}
    return {
        "prompt_tokens": usage.get("input_tokens", 0),
        "completion_tokens": usage.get("output_tokens", 0),
        "total_tokens": usage.get("total_tokens", 0),
    }


@router.get("/models")
async def models() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": MODEL_ID, "object": "model", "owned_by": "graphgate"}],
    }


@router.post("/chat/completions", response_model=None)
async def chat_completions(body: CompletionRequest, request: Request) -> Response:
    """Errors (validation included) are rendered in OpenAI's shape for every `/v1` path."""
    turn = ChatRequest(messages=[message.to_langchain() for message in body.messages])
    await admit_turns(request, [turn])
    session = request.headers.get(SESSION_HEADER) or body.user
    configurable = admitted_configurable(request, {SESSION_ID: session} if session else {})
    runnable: ChatRunnable = request.app.state.chat_runnable
    config: Any = {"configurable": configurable}
    turn_input = {"question": "", "messages": turn.messages}
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        trace_id = request_context(request.scope).trace_id
        chunks = stream_completion(
            runnable, turn_input, config, completion_id, include_usage, trace_id
        )
        return StreamingResponse(chunks, media_type="text/event-stream")
    reply = await runnable.ainvoke(turn_input, config)
    return JSONResponse(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": reply.response_metadata.get("model", MODEL_ID),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.text},
                    "finish_reason": "stop",
                }
            ],
            "usage": usage_of(reply.response_metadata),
        }
    )


def sse(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


async def stream_completion(
    runnable: ChatRunnable,
    turn_input: dict[str, Any],
    config: Any,
    completion_id: str,
    include_usage: bool,
    trace_id: str,
) -> AsyncIterator[bytes]:
    """OpenAI's stream: role, content deltas, the finish, optionally usage, then [DONE]. A
    failure after the stream began is sent as an `error` payload, as OpenAI does."""
    base = {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time())}
    model = MODEL_ID

    def delta(content: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": content, "finish_reason": finish}
        return sse({**base, "model": model, "choices": [choice]})

    yield delta({"role": "assistant", "content": ""})
    usage: dict[str, int] | None = None
    try:
        async for chunk in runnable.astream(turn_input, config):
            if isinstance(chunk, AIMessageChunk) and "model" in chunk.response_metadata:
                model = chunk.response_metadata["model"]
                usage = usage_of(chunk.response_metadata)
            elif chunk.text:
                yield delta({"content": chunk.text})
    except GraphgateError as exc:
        yield openai_stream_error(exc, trace_id)
        return
    yield delta({}, "stop")
    if include_usage and usage is not None:
        yield sse({**base, "model": model, "choices": [], "usage": usage})
    yield b"data: [DONE]\n\n"
