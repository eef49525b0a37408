"""The one admission of every API, before any response starts, so a refused request gets its
HTTP status (400, 409, 413, 422, 429, 503) instead of a 200 stream with an error inside, and a
run only ever starts on a turn that is known to be sound. `admit` does it in one order: the
principal, the batch bound (before any input is read), the API's own reading of its request
(an `Ask`: turns, sessions, generation parameters, tools), the thread ids, the input guard
(each turn's tokens counted once), the budgets, the rate limit, and last the session locks.
It returns an `AdmittedTurn` per turn, which the request context keeps and the chat runnable
puts on each run (`graphs/run_facts.py`): nothing after it derives a thread id or counts a
turn's tokens again. LangServe's routes read their body in `api/langserve_body.py`, `/v1` in
`api/openai_request.py`.

The graph applies guard and limit itself (under `langgraph dev` nothing else does); a run's
facts carry the request's `Admission`, so the limit node does not count the request twice and
claims its turn's budget reservation from it. What admission took and no run used (the
reservations, the rate units of a request refused after counting, the session locks) is given
back when the request ends (`RequestContext.end`), or at once when the session locks refuse it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request

from api.caller import authenticated
from api.chat_runnable import refuse_repeated_sessions
from api.chat_schema import ChatRequest
from graphs.errors import InvalidInput, PayloadTooLarge, UnsupportedParameter
from graphs.identity import Principal, thread_id
from graphs.limits.reservations import budget_caps, input_to_reserve
from graphs.model.params import ModelParams
from graphs.model.turn import ToolRequest
from graphs.nodes.guard import validate_turn
from graphs.nodes.limit import Admission, give_back, rate_limit, refusal
from graphs.nodes.limit import admit as admit_turns
from graphs.route_services import ChatRuntime
from graphs.run_facts import AdmittedTurn, RunFacts
from middleware.request_context import RequestContext, request_context


def refuse_oversized_batch(runtime: ChatRuntime, size: int, rate_limit_max: int) -> None:
    """413 for a batch larger than `MAX_BATCH_SIZE`, or than the rate limit (a 429 that no wait
    would cure), checked on the parsed JSON before any input is validated: a flood of tiny
    inputs then costs one `len`."""
    largest = min(runtime.settings.max_batch_size, rate_limit_max)
    if size > largest:
        raise PayloadTooLarge(
            f"A batch holds at most {largest} inputs (MAX_BATCH_SIZE="
            f"{runtime.settings.max_batch_size}, rate limit {rate_limit_max}); "
            f"this one has {size}."
        )


@dataclass(frozen=True)
class AskedTurn:
    """One turn as an API read it: the turn, the session it continues, its parameters."""

    turn: ChatRequest
    session: str | None = None
    params: ModelParams = field(default_factory=ModelParams)


@dataclass(frozen=True)
class Ask:
    """What a request asks to run: its turns, and (`/v1`) its tools and end user."""

    turns: list[AskedTurn]
    tools: ToolRequest = field(default_factory=ToolRequest)
    end_user: str | None = None


def session_threads(
    principal: str, sessions: list[str | None], runtime: ChatRuntime
) -> list[str | None]:
    """The thread of each turn's session (None for a one-off turn). Every session id follows
    the rule, on a route that keeps sessions; a batch never holds two turns of one session (it
    would wait on itself for the session's lock)."""
    named = [session for session in sessions if session]
    if named and not runtime.route.sessions:
        raise InvalidInput(f"The route {runtime.route.path} keeps no sessions: omit session_id.")
    threads = [
        thread_id(principal, session, runtime.thread_route) if session else None
        for session in sessions
    ]
    refuse_repeated_sessions(named)  # each a valid session id, so a string, by now
    return threads


async def hold_sessions(context: RequestContext, runtime: ChatRuntime, threads: list[str]) -> None:
    """Take the lock of every session the request continues, before any response starts (a
    busy session's 409 or 503 is the response's status), in one order (two batches that share
    sessions cannot each wait for the other); the request context keeps them for the runs."""
    settings = runtime.settings
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.queue_timeout
    try:
        for thread in sorted(threads):
            wait = max(0.0, deadline - loop.time())
            context.session_locks_held[thread] = await runtime.take_session_lock(thread, wait)
    except BaseException:
        # Refused before it runs: its locks, reservations and rate units go back now, before
        # the client hears of it.
        await context.end()
        raise


def guard(runtime: ChatRuntime, ask: Ask) -> list[int]:
    """The input guard of each turn (`graphs/nodes/guard.py`), and its tokens, counted once."""
    if ask.tools.tools and not runtime.calls_tools:
        raise UnsupportedParameter("tools", "a configured model cannot call tools (the demo model)")
    return [
        validate_turn(
            asked.turn.question,
            asked.turn.messages,
            runtime.counter,
            runtime.settings.max_input_tokens,
            runtime.prompt_tokens,
            runtime.question_only,
        ).tokens
        for asked in ask.turns
    ]


async def take_quota(
    context: RequestContext, principal: Principal, runtime: ChatRuntime, ask: Ask, tokens: list[int]
) -> Admission:
    """Reserve each turn's worst case against the principal's budgets, then count the turns in
    its window; the decision goes to the request context for the rate-limit headers, and what
    no run uses goes back when the request ends. A session's history is reserved once the run
    has fitted it (`cover_prompt`)."""
    tools_tokens = runtime.counter.count_tools(ask.tools.tools)
    caps = budget_caps(runtime, principal.quota)
    asks = [
        (
            input_to_reserve(runtime, turn_tokens + tools_tokens) if caps.on else 0,
            asked.params.max_tokens,
        )
        for asked, turn_tokens in zip(ask.turns, tokens, strict=True)
    ]
    decision, reservations = await admit_turns(runtime, principal.name, asks, principal.quota)
    context.rate_limit = decision
    if not decision.allowed:
        raise refusal(decision, runtime.settings.rate_limit_window)
    admission = Admission(principal.name, caps)
    admission.took(decision, len(ask.turns), reservations)
    context.on_end.append(lambda: give_back(runtime, admission))
    return admission


async def admit(
    request: Request, runtime: ChatRuntime, read: Callable[[], Ask], size: int = 1
) -> list[AdmittedTurn]:
    """Admit a request to `runtime`'s route, in order (see the module's docstring); `read` is
    the API's reading of its request, called once the batch bound (`size` inputs) allows it."""
    context = request_context(request.scope)
    principal = authenticated(request)
    refuse_oversized_batch(runtime, size, rate_limit(runtime, principal.quota))
    ask = read()
    threads = session_threads(principal.name, [asked.session for asked in ask.turns], runtime)
    tokens = guard(runtime, ask)
    if runtime.settings.log_prompts:
        context.run.prompt = " | ".join(asked.turn.question for asked in ask.turns)
    admission = await take_quota(context, principal, runtime, ask, tokens)
    admitted = [
        AdmittedTurn(
            thread,
            RunFacts(
                principal.name,
                admission=admission,
                params=asked.params,
                turn_tokens=turn_tokens,
                tools=ask.tools,
                end_user=ask.end_user,
            ),
        )
        for asked, thread, turn_tokens in zip(ask.turns, threads, tokens, strict=True)
    ]
    context.admitted = admitted
    context.run.end_user = ask.end_user
    context.run.session = next((a.session for a in reversed(ask.turns) if a.session), None)
    await hold_sessions(context, runtime, [thread for thread in threads if thread])
    return admitted
