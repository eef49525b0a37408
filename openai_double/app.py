"""The double's HTTP app: OpenAI's routes plus `/control`."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from openai_double.anthropic_api import messages as anthropic_messages
from openai_double.behaviors import (
    Behavior,
    Ledger,
    RequestRecord,
    reply_tokens,
    tool_calls,
    truncated,
)

EMBEDDING_DIMENSIONS = 256
TOKENS_PER_CALL = 5  # what a tool call counts as output, in the usage the double reports


class DroppedConnection(Exception):
    """Raised mid-stream to make the server cut the connection (a `drop_after` fault)."""


def usage(body: dict[str, Any], completion_tokens: int) -> dict[str, int]:
    prompt = sum(len(str(m.get("content", "")).split()) + 3 for m in body.get("messages", []))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }


def chunk(completion_id: str, model: str, delta: dict[str, Any], finish: str | None) -> bytes:
    payload = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(payload)}\n\n".encode()


async def stream_reply(
    ledger: Ledger, record: RequestRecord, behavior: Behavior | None, tokens: list[str]
) -> AsyncIterator[bytes]:
    body = record.body
    model, completion_id = str(body.get("model", "")), f"chatcmpl-{uuid.uuid4().hex}"
    pace = 1 / behavior.tokens_per_second if behavior and behavior.tokens_per_second else 0
    cancelled = False
    try:
        yield chunk(completion_id, model, {"role": "assistant", "content": ""}, None)
        calls = tool_calls(behavior, body)
        if calls:
            for delta in tool_call_deltas(calls):
                yield chunk(completion_id, model, delta, None)
            tokens = []
        for index, token in enumerate(tokens):
            if behavior and behavior.drop_after == index:
                raise DroppedConnection
            if behavior and behavior.malformed and index == len(tokens) // 2:
                yield b"data: {not json\n\n"
            if pace:
                await asyncio.sleep(pace)
            yield chunk(completion_id, model, {"content": token}, None)
        yield chunk(completion_id, model, {}, finish_reason(behavior, body, calls))
        record.usage = usage(body, len(tokens) + TOKENS_PER_CALL * len(calls))
        if (body.get("stream_options") or {}).get("include_usage"):
            final: dict[str, Any] = {"id": completion_id, "object": "chat.completion.chunk"}
            final.update(model=model, choices=[], usage=record.usage)
            yield f"data: {json.dumps(final)}\n\n".encode()
        yield b"data: [DONE]\n\n"
    except BaseException:
        cancelled = True
        raise
    finally:
        ledger.finish(record, cancelled=cancelled)


def tool_call_deltas(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each call as OpenAI streams it: id and name first, then its arguments in two pieces."""
    deltas = []
    for index, call in enumerate(calls):
        arguments = call["function"]["arguments"]
        head = {"index": index, "id": call["id"], "type": "function"}
        head["function"] = {"name": call["function"]["name"], "arguments": ""}
        deltas.append({"tool_calls": [head]})
        half = len(arguments) // 2
        for piece in (arguments[:half], arguments[half:]):
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    return deltas


def finish_reason(
    behavior: Behavior | None, body: dict[str, Any], calls: list[dict[str, Any]]
) -> str:
    if calls:
        return "tool_calls"
    if truncated(behavior, body):
        return "length"
    return behavior.finish_reason if behavior and behavior.finish_reason else "stop"


async def wait_for_disconnect(request: Request) -> None:
    """Block until the client goes away: the body is read, so the next message is the disconnect."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def client_left_within(request: Request, seconds: float | None) -> bool:
    """Wait `seconds` (None: for ever); True as soon as the client disconnects instead."""
    try:
        await asyncio.wait_for(wait_for_disconnect(request), seconds)
    except TimeoutError:
        return False
    return True


async def chat_completions(request: Request) -> Response:
    ledger: Ledger = request.app.state.ledger
    body = await request.json()
    record, behavior = ledger.start(body)
    tokens = reply_tokens(behavior, body)
    # Waits before an answer end early when the client goes, and count as a cancellation.
    wait: float | None = 0.0
    if behavior:
        wait = None if behavior.hang else behavior.latency_ms / 1000
    if wait != 0.0 and await client_left_within(request, wait):
        ledger.finish(record, cancelled=True)
        return Response(status_code=499)
    status = ledger.next_status(behavior) if behavior else 200
    if status != 200:
        ledger.finish(record)
        return error_response(status, behavior)
    if body.get("stream"):
        return StreamingResponse(
            stream_reply(ledger, record, behavior, tokens), media_type="text/event-stream"
        )
    pace = behavior.tokens_per_second if behavior else 0
    generated = (
        len(tokens) if behavior is None or behavior.drop_after is None else behavior.drop_after
    )
    if pace and await client_left_within(request, generated / pace):
        ledger.finish(record, cancelled=True)
        return Response(status_code=499)
    calls = tool_calls(behavior, body)
    record.usage = usage(body, len(tokens) + TOKENS_PER_CALL * len(calls))
    whole = completion(body, tokens, record.usage, behavior)
    if behavior and (behavior.malformed or behavior.drop_after is not None):
        return broken_completion(ledger, record, behavior, json.dumps(whole).encode())
    ledger.finish(record)
    return JSONResponse(whole)


def broken_completion(
    ledger: Ledger, record: RequestRecord, behavior: Behavior, whole: bytes
) -> Response:
    """A whole reply's faults: a body that is not JSON (`malformed`), or the connection cut
    half-way through the body (`drop_after`, after the time its tokens took)."""
    if behavior.malformed:
        ledger.finish(record)
        return Response(whole[: len(whole) // 2], media_type="application/json")

    async def half_then_cut() -> AsyncIterator[bytes]:
        try:
            yield whole[: len(whole) // 2]
            raise DroppedConnection
        finally:
            ledger.finish(record, cancelled=True)

    headers = {"content-length": str(len(whole))}
    return StreamingResponse(half_then_cut(), media_type="application/json", headers=headers)


def completion(
    body: dict[str, Any], tokens: list[str], used: dict[str, int], behavior: Behavior | None
) -> dict[str, Any]:
    calls = tool_calls(behavior, body)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(tokens)}
    if calls:
        message = {"role": "assistant", "content": None, "tool_calls": calls}
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", ""),
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason(behavior, body, calls)}
        ],
        "usage": used,
    }


def error_response(status: int, behavior: Behavior | None) -> JSONResponse:
    headers = {}
    if behavior and behavior.retry_after is not None:
        headers["Retry-After"] = f"{behavior.retry_after:g}"
    error = {"message": f"injected status {status}", "type": "double_error", "code": str(status)}
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def embedding(text: str) -> list[float]:
    """A bag of words hashed into a unit vector: texts that share words point the same way,
    so retrieval and the semantic cache can be exercised (crudely) without a model."""
    vector = [0.0] * EMBEDDING_DIMENSIONS
    for word in re.findall(r"[a-z0-9_]+", text.lower()):
        bucket = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "big")
        vector[bucket % EMBEDDING_DIMENSIONS] += 1.0
    norm = math.sqrt(sum(value * value for value in vector)) or 1.0
    return [value / norm for value in vector]


async def embeddings(request: Request) -> Response:
    ledger: Ledger = request.app.state.ledger
    body = await request.json()
    record, _ = ledger.start(body)
    inputs = body.get("input", [])
    texts = [inputs] if isinstance(inputs, str) else [str(i) for i in inputs]
    ledger.finish(record)
    data = [
        {"object": "embedding", "index": i, "embedding": embedding(t)} for i, t in enumerate(texts)
    ]
    tokens = sum(len(t.split()) for t in texts)
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "model": body.get("model", ""),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


async def models(request: Request) -> Response:
    return JSONResponse({"object": "list", "data": [{"id": "double", "object": "model"}]})


async def add_behavior(request: Request) -> Response:
    try:
        behavior = Behavior.model_validate(await request.json())
    except (ValidationError, json.JSONDecodeError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=422)
    request.app.state.ledger.add(behavior)
    return JSONResponse(behavior.model_dump(), status_code=201)


async def reset(request: Request) -> Response:
    request.app.state.ledger.reset()
    return Response(status_code=204)


async def stats(request: Request) -> Response:
    ledger: Ledger = request.app.state.ledger
    return JSONResponse(ledger.stats(request.query_params.get("match", "")))


async def wait(request: Request) -> Response:
    """Long-poll until `counter` of the requests matching `match` reaches `value`: 200 with the
    stats then, 408 at `timeout` seconds. Tests await upstream events instead of sleeping."""
    ledger: Ledger = request.app.state.ledger
    params = request.query_params
    match = params.get("match", "")
    reached = await ledger.wait_for(
        match, params["counter"], int(params["value"]), float(params.get("timeout", "5"))
    )
    return JSONResponse(ledger.stats(match), status_code=200 if reached else 408)


def create_app() -> Starlette:
    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
            Route("/v1/messages", anthropic_messages, methods=["POST"]),
            Route("/v1/models", models),
            Route("/control/behaviors", add_behavior, methods=["POST"]),
            Route("/control/behaviors", reset, methods=["DELETE"]),
            Route("/control/stats", stats),
            Route("/control/wait", wait),
        ]
    )
    app.state.ledger = Ledger()
    return app
