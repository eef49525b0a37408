"""An OpenAI-compatible endpoint (`/v1/chat/completions`, `/v1/models`) in front of the same
chat graph, so the `openai` SDKs and the tools built on them can use graphgate unchanged.

The same guard, limits, budgets, cache, usage and memory apply; generation parameters, tools
and response formats are forwarded to the model (`api/openai_request.py`). OpenAI's API is
stateless: a client sends the whole conversation. With a session (the `X-Session-Id` header)
graphgate keeps the history itself, and the client sends only the new message(s), a tool's
result included. The `user` field names the caller's end user, as in OpenAI's API: it goes to
the access line, never to the session. Errors use OpenAI's format,
`{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from langchain_core.messages import AIMessageChunk

from api.admission import admit
from api.chat_runnable import ChatRunnable
from api.openai_request import MODEL_ID, CompletionRequest, completion_ask, refuse_unsupported
from api.openai_response import CompletionStream, completion
from graphs.errors import GraphgateError
from graphs.route_services import RouteServices
from middleware.error_responses import openai_stream_error
from middleware.request_context import request_context

router = APIRouter(prefix="/v1", tags=["openai"])

SESSION_HEADER = "x-session-id"
# What a proxy needs to pass a stream through as it is written (LangServe's streams send them).
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.get("/models")
async def models() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": MODEL_ID, "object": "model", "owned_by": "graphgate"}],
    }


@router.post("/chat/completions", response_model=None)
async def chat_completions(body: CompletionRequest, request: Request) -> Response:
    """Errors (validation included) are rendered in OpenAI's shape for every `/v1` path."""
    services: RouteServices = request.app.state.graphs.chat.services
    refuse_unsupported(body)
    ask = completion_ask(body, request.headers.get(SESSION_HEADER), services)
    await admit(request, services, lambda: ask)
    runnable: ChatRunnable = request.app.state.chat_runnable
    config: Any = {}  # the run's thread and facts are admission's
    turn_input = {"question": "", "messages": ask.turns[0].messages}
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        trace_id = request_context(request.scope).trace_id
        chunks = stream_completion(
            runnable,
            turn_input,
            config,
            CompletionStream(completion_id, MODEL_ID),
            include_usage,
            trace_id,
        )
        return StreamingResponse(chunks, media_type="text/event-stream", headers=STREAM_HEADERS)
    reply = await runnable.ainvoke(turn_input, config)
    result = completion(reply, completion_id, MODEL_ID)
    return JSONResponse(result.model_dump(mode="json", exclude_unset=True))


async def stream_completion(
    runnable: ChatRunnable,
    turn_input: dict[str, Any],
    config: Any,
    stream: CompletionStream,
    include_usage: bool,
    trace_id: str,
) -> AsyncIterator[bytes]:
    """OpenAI's stream: role, content and tool-call deltas, the finish, optionally usage, then
    [DONE]. A failure after the stream began is sent as an `error` payload, as OpenAI does."""
    yield stream.opening()
    metadata: dict[str, Any] = {}
    try:
        async for chunk in runnable.astream(turn_input, config):
            if not isinstance(chunk, AIMessageChunk):
                continue
            metadata.update(chunk.response_metadata)
            if "model" in chunk.response_metadata:  # graphgate's closing chunk
                stream.model = str(chunk.response_metadata["model"])
            elif (delta := stream.message_chunk(chunk)) is not None:
                yield delta
    except GraphgateError as exc:
        yield openai_stream_error(exc, trace_id)
        return
    yield stream.closing(metadata)
    if include_usage:
        yield stream.usage(metadata)
    yield b"data: [DONE]\n\n"
