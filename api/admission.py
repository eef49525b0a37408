"""Admission before any response starts: guard and limit run here for the chat endpoints, so a
refused request gets its HTTP status (400, 429) instead of a 200 stream with an error inside.

The graph applies the same rules itself (under `langgraph dev` nothing else does); the run
carries an `AdmissionTicket` so the limit node does not count the request twice.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from pydantic import ValidationError

from api.chat_runnable import SESSION_ID, ChatRequest
from graphs.errors import InvalidInput, PayloadTooLarge
from graphs.nodes.guard import validate_turn
from graphs.nodes.limit import ANONYMOUS, AdmissionTicket, admit, refusal
from graphs.runtime.context import ChatRuntime
from middleware.access_log import RunFacts
from middleware.context import (
    CLIENT_GONE,
    PRINCIPAL,
    RATE_LIMIT,
    RUN_FACTS,
    STREAM_FAILURE,
    scope_state,
)
from middleware.principal import IDENTIFIER
from middleware.sse_errors import StreamFailure

ADMITTED_ENDPOINTS = {"invoke", "batch", "stream", "stream_log", "stream_events"}


def principal_of(request: Request) -> str:
    return str(scope_state(request.scope).get(PRINCIPAL, ANONYMOUS))


def thread_id_for(principal: str, session_id: str) -> str:
    """The checkpoint thread of a principal's session; one principal never reaches another's."""
    if not IDENTIFIER.match(session_id):
        raise InvalidInput("session_id must be 1-128 letters, digits, '.', '_' or '-'.")
    return f"{principal}:{session_id}"


async def shared_sessions(request: Request) -> bool:
    """Whether a batch would run several turns of one session at once: they would race on its
    history, each starting from the same state, and only the last would be kept."""
    if not request.url.path.endswith("/batch"):
        return False
    body = await request.json()
    inputs, config = body.get("inputs") or [], body.get("config") or {}
    configs = config if isinstance(config, list) else [config] * len(inputs)
    sessions = [c.get("configurable", {}).get(SESSION_ID) for c in configs if isinstance(c, dict)]
    named = [session for session in sessions if session]
    return len(named) != len(set(named))


async def turns_of(request: Request) -> list[ChatRequest] | None:
    """The turns in a chat request body, or None when LangServe will refuse it with 422."""
    try:
        body = await request.json()
        raw = body["inputs"] if request.url.path.endswith("/batch") else [body["input"]]
        return [ChatRequest.model_validate(item) for item in raw]
    except (json.JSONDecodeError, KeyError, TypeError, ValidationError):
        return None


async def admit_chat_request(request: Request) -> None:
    """FastAPI dependency of every chat route: guard each turn, check the principal's budgets,
    then count the turns in its rate window."""
    if request.method != "POST" or request.url.path.rsplit("/", 1)[-1] not in ADMITTED_ENDPOINTS:
        return
    turns = await turns_of(request)
    if not turns:
        return
    runtime: ChatRuntime = request.app.state.chat.runtime
    if await shared_sessions(request):
        raise InvalidInput("A batch cannot hold two turns of one session; send them in order.")
    # A batch counts each turn against the rate limit, so one larger than the limit could
    # never be admitted: say so instead of a 429 that no wait would cure.
    largest = min(runtime.settings.max_batch_size, runtime.settings.rate_limit_max)
    if len(turns) > largest:
        raise PayloadTooLarge(
            f"A batch holds at most {largest} inputs (MAX_BATCH_SIZE="
            f"{runtime.settings.max_batch_size}, RATE_LIMIT_MAX={runtime.settings.rate_limit_max}"
            f"); this one has {len(turns)}."
        )
    await admit_turns(request, turns)


async def admit_turns(request: Request, turns: list[ChatRequest]) -> None:
    """Guard each turn, check the principal's budgets, then count the turns in its window; the
    decision goes to the request state for the rate-limit headers."""
    runtime: ChatRuntime = request.app.state.chat.runtime
    for turn in turns:
        validate_turn(
            turn.question, turn.messages, runtime.counter, runtime.settings.max_input_tokens
        )
    decision = await admit(runtime, principal_of(request), len(turns))
    scope_state(request.scope)[RATE_LIMIT] = decision
    if not decision.allowed:
        raise refusal(decision, runtime.settings.rate_limit_window)


async def logged_prompt(request: Request) -> str | None:
    """The question, for the access line, only when `LOG_PROMPTS=true`."""
    runtime: ChatRuntime = request.app.state.chat.runtime
    if not runtime.settings.log_prompts:
        return None
    turns = await turns_of(request)
    return " | ".join(turn.question for turn in turns) if turns else None


async def configure_run(config: dict[str, Any], request: Request) -> dict[str, Any]:
    """LangServe's per-request config modifier: server-side identity, thread and admission."""
    configurable = await admitted_configurable(request, dict(config.get("configurable") or {}))
    return {**config, "configurable": configurable}


async def admitted_configurable(request: Request, configurable: dict[str, Any]) -> dict[str, Any]:
    """The `configurable` of an admitted run: the principal, its session's thread, the ticket
    that spares the graph a second count, and the request's failure, disconnect and log slots."""
    principal = principal_of(request)
    session_id = configurable.get(SESSION_ID)
    if session_id:
        configurable["thread_id"] = thread_id_for(principal, str(session_id))
    state = scope_state(request.scope)
    failure = StreamFailure()
    state[STREAM_FAILURE] = failure
    facts = state.get(RUN_FACTS)
    if isinstance(facts, RunFacts):
        facts.session = str(session_id) if session_id else None
        facts.prompt = await logged_prompt(request)
    configurable.update(
        principal=principal,
        admission=AdmissionTicket(principal),
        # The request's slots travel to the runnable under the same names as in its state.
        **{STREAM_FAILURE: failure, CLIENT_GONE: state.get(CLIENT_GONE), RUN_FACTS: facts},
    )
    return configurable
