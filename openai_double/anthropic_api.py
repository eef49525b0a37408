"""The double's Anthropic Messages API (`POST /v1/messages`), plain and streamed, with usage and
the same behaviors as its OpenAI routes (statuses such as 429 with `retry-after`, 500 and
529 `overloaded_error`, latency, pacing, dropped streams). Point `ANTHROPIC_BASE_URL` at the
double's root."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from openai_double.behaviors import Behavior, Ledger, RequestRecord, reply_tokens, truncated

ERROR_TYPES = {429: "rate_limit_error", 529: "overloaded_error", 400: "invalid_request_error"}


class DroppedConnection(Exception):
    """Raised mid-stream to make the server cut the connection (a `drop_after` fault)."""


def text_of(content: Any) -> str:
    """A message's text: a string, or the text of its content blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(block.get("text", "")) for block in content if isinstance(block, dict))
    return ""


def openai_shaped(body: dict[str, Any]) -> dict[str, Any]:
    """The request as the shared reply logic reads it: messages as text, and max_tokens."""
    messages = [{"content": text_of(m.get("content"))} for m in body.get("messages", [])]
    return {"messages": messages, "max_tokens": body.get("max_tokens")}


def usage(body: dict[str, Any], output_tokens: int) -> dict[str, int]:
    texts = [text_of(body.get("system", ""))] + [
        text_of(m.get("content")) for m in body.get("messages", [])
    ]
    input_tokens = sum(len(text.split()) + 3 for text in texts if text)
    return {"input_tokens": input_tokens, "output_tokens": output_tokens}


def sse(event: str, **fields: Any) -> bytes:
    """One event of Anthropic's stream; its data repeats the event's name as `type`."""
    return f"event: {event}\ndata: {json.dumps({'type': event, **fields})}\n\n".encode()


def stop_reason(behavior: Behavior | None, shaped: dict[str, Any]) -> str:
    return "max_tokens" if truncated(behavior, shaped) else "end_turn"


def message(body: dict[str, Any], text: str, used: dict[str, int], reason: str) -> dict[str, Any]:
    return {
        "id": f"msg_{uuid.uuid4().hex}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", ""),
        "content": [{"type": "text", "text": text}] if text else [],
        "stop_reason": reason,
        "stop_sequence": None,
        "usage": used,
    }


async def stream_message(
    ledger: Ledger, record: RequestRecord, behavior: Behavior | None, tokens: list[str]
) -> AsyncIterator[bytes]:
    body, shaped = record.body, openai_shaped(record.body)
    pace = 1 / behavior.tokens_per_second if behavior and behavior.tokens_per_second else 0
    cancelled = False
    try:
        start = message(body, "", usage(body, 1), "")
        yield sse("message_start", message={**start, "stop_reason": None})
        yield sse("content_block_start", index=0, content_block={"type": "text", "text": ""})
        for index, token in enumerate(tokens):
            if behavior and behavior.drop_after == index:
                raise DroppedConnection
            if pace:
                await asyncio.sleep(pace)
            delta = {"type": "text_delta", "text": token}
            yield sse("content_block_delta", index=0, delta=delta)
        yield sse("content_block_stop", index=0)
        record.usage = usage(body, len(tokens))
        finish = {"stop_reason": stop_reason(behavior, shaped), "stop_sequence": None}
        # Today's API repeats the whole usage here (input tokens included).
        yield sse("message_delta", delta=finish, usage=record.usage)
        yield sse("message_stop")
    except BaseException:
        cancelled = True
        raise
    finally:
        ledger.finish(record, cancelled=cancelled)


def error_response(status: int, behavior: Behavior | None) -> JSONResponse:
    headers = {}
    if behavior and behavior.retry_after is not None:
        headers["retry-after"] = f"{behavior.retry_after:g}"
    error = {"type": ERROR_TYPES.get(status, "api_error"), "message": f"injected status {status}"}
    return JSONResponse({"type": "error", "error": error}, status_code=status, headers=headers)


async def messages(request: Request) -> Response:
    ledger: Ledger = request.app.state.ledger
    body = await request.json()
    record, behavior = ledger.start(body)
    shaped = openai_shaped(body)
    tokens = reply_tokens(behavior, shaped)
    if behavior and behavior.latency_ms:
        await asyncio.sleep(behavior.latency_ms / 1000)
    status = ledger.next_status(behavior) if behavior else 200
    if status != 200:
        ledger.finish(record)
        return error_response(status, behavior)
    if body.get("stream"):
        return StreamingResponse(
            stream_message(ledger, record, behavior, tokens), media_type="text/event-stream"
        )
    record.usage = usage(body, len(tokens))
    ledger.finish(record)
    return JSONResponse(message(body, "".join(tokens), record.usage, stop_reason(behavior, shaped)))
