"""Admission before any response starts: a batch's size (before any per-input work), the
body's shape, then guard and limit, for the chat endpoints, so a refused request gets its HTTP
status (400, 413, 422, 429) instead of a 200 stream with an error inside, and LangServe only
ever reads a body that is known to be sound.

The graph applies guard and limit itself (under `langgraph dev` nothing else does); the run's
facts carry the request's `Admission` so the limit node does not count the request twice, and
claims its turn's budget reservation from it. Last, the request takes the lock of each session it
continues (`graphs/memory/session_lock.py`). What admission took and no run used (the
reservations, the rate units of a request refused after counting) is given back when the
request ends (`RequestContext.end`), or at once when the session locks refuse it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from langserve.api_handler import _config_from_hash
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.caller import authenticated
from api.chat_runnable import SESSION_ID, ChatRequest, refuse_repeated_sessions
from api.validation_errors import describe
from graphs.errors import InvalidInput, PayloadTooLarge, ValidationFailed
from graphs.identity import thread_id
from graphs.limits.reservations import budget_caps, input_to_reserve
from graphs.memory.session_lock import take_turn
from graphs.model.params import ModelParams, read_params
from graphs.nodes.guard import validate_turn
from graphs.nodes.limit import Admission, admit, give_back, rate_limit, refusal
from graphs.route_services import ChatRuntime
from graphs.run_facts import FACTS_KEY, RunFacts
from middleware.request_context import RequestContext, request_context

ADMITTED_ENDPOINTS = {"invoke", "batch", "stream", "stream_log", "stream_events"}


class RunConfig(BaseModel):
    """The part of a client's `config` that admission reads; LangServe checks the rest."""

    model_config = ConfigDict(extra="allow")
    configurable: dict[str, Any] = Field(default_factory=dict)


class InvokeBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    input: ChatRequest
    config: RunConfig = Field(default_factory=RunConfig)


class BatchBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    inputs: list[ChatRequest]
    config: RunConfig | list[RunConfig] = Field(default_factory=RunConfig)

    def configs(self) -> list[RunConfig]:
        return self.config if isinstance(self.config, list) else [self.config] * len(self.inputs)


def hash_config(request: Request, max_chars: int) -> RunConfig:
    """The config of a `/chat/c/{config_hash}/...` route (the playground's), bounded: its
    LZ-string can inflate 11 KB of URL into 16 MB, and no body limit sees a URL."""
    config_hash = request.path_params.get("config_hash")
    if not config_hash:
        return RunConfig()
    if len(config_hash) > max_chars:
        raise InvalidInput(f"The config hash is longer than MAX_CONFIG_HASH_CHARS={max_chars}.")
    try:
        return RunConfig.model_validate(_config_from_hash(config_hash))
    except ValidationError as exc:
        raise ValidationFailed(describe(exc.errors())) from None


def merged(base: RunConfig, configs: list[RunConfig]) -> list[RunConfig]:
    """Each body config over the URL's, as LangServe merges them (the body's keys win)."""
    return [
        RunConfig(configurable={**base.configurable, **config.configurable}) for config in configs
    ]


def batch_size(body: Any) -> int:
    """How many inputs a batch body holds, read before anything looks at them (0 if it holds
    no list: validation then says what is wrong)."""
    inputs = body.get("inputs") if isinstance(body, dict) else None
    return len(inputs) if isinstance(inputs, list) else 0


def refuse_oversized_batch(runtime: ChatRuntime, body: Any, rate_limit_max: int) -> None:
    """413 for a batch larger than `MAX_BATCH_SIZE`, or than the rate limit (a 429 that no wait
    would cure), checked on the parsed JSON before any input is validated: a flood of tiny
    inputs then costs one `len`."""
    size = batch_size(body)
    largest = min(runtime.settings.max_batch_size, rate_limit_max)
    if size > largest:
        raise PayloadTooLarge(
            f"A batch holds at most {largest} inputs (MAX_BATCH_SIZE="
            f"{runtime.settings.max_batch_size}, rate limit {rate_limit_max}); "
            f"this one has {size}."
        )


def read_body(context: RequestContext, endpoint: str) -> tuple[list[ChatRequest], list[RunConfig]]:
    """The turns and configs of a chat request body, or 422 naming what is wrong (a batch's
    config list must match its inputs, as LangServe checks after admission)."""
    try:
        if endpoint == "batch":
            batch = BatchBody.model_validate(context.json_body)
            if isinstance(batch.config, list) and len(batch.config) != len(batch.inputs):
                raise ValidationFailed(
                    f"Number of configs ({len(batch.config)}) must match number of inputs "
                    f"({len(batch.inputs)})."
                )
            return batch.inputs, batch.configs()
        single = InvokeBody.model_validate(context.json_body)
        return [single.input], [single.config]
    except ValidationError as exc:
        raise ValidationFailed(describe(exc.errors())) from None


def session_threads(principal: str, configs: list[RunConfig], runtime: ChatRuntime) -> list[str]:
    """The threads of the sessions the turns continue. Every session id follows the rule, on a
    route that keeps sessions; a batch never holds two turns of one session (it would wait on
    itself for the session's lock)."""
    named = [c.configurable[SESSION_ID] for c in configs if c.configurable.get(SESSION_ID)]
    if named and not runtime.route.sessions:
        raise InvalidInput(f"The route {runtime.route.path} keeps no sessions: omit session_id.")
    threads = [thread_id(principal, session_id, runtime.thread_route) for session_id in named]
    refuse_repeated_sessions(named)  # each a valid session id, so a string, by now
    return threads


async def hold_sessions(request: Request, runtime: ChatRuntime, threads: list[str]) -> None:
    """Take the lock of every session the request continues, before any response starts (a
    busy session's 409 or 503 is the response's status), in one order (two batches that share
    sessions cannot each wait for the other); the request context keeps them for the runs."""
    context = request_context(request.scope)
    settings = runtime.settings
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.queue_timeout
    try:
        for thread in sorted(threads):
            wait = max(0.0, deadline - loop.time())
            context.session_leases[thread] = await take_turn(
                runtime.session_locks, thread, settings.session_conflict, wait
            )
    except BaseException:
        # Refused before it runs: its locks, reservations and rate units go back now, before
        # the client hears of it.
        await context.end()
        raise


RuntimeOf = Callable[[], ChatRuntime]


def admission(runtime_of: RuntimeOf) -> Callable[[Request], Awaitable[None]]:
    """The FastAPI dependency that admits the requests of one route."""

    async def admit_route_request(request: Request) -> None:
        await admit_chat_request(request, runtime_of())

    return admit_route_request


async def admit_chat_request(request: Request, runtime: ChatRuntime) -> None:
    """The body's shape and sessions, guard each turn, check the principal's budgets, then
    count the turns in the route's rate window."""
    from_url = hash_config(request, runtime.settings.max_config_hash_chars)
    endpoint = request.url.path.rsplit("/", 1)[-1]
    if request.method != "POST" or endpoint not in ADMITTED_ENDPOINTS:
        return
    context = request_context(request.scope)
    principal = authenticated(request)
    if endpoint == "batch":
        refuse_oversized_batch(runtime, context.json_body, rate_limit(runtime, principal.quota))
    turns, configs = read_body(context, endpoint)
    run_configs = merged(from_url, configs)
    threads = session_threads(principal.name, run_configs, runtime)
    params = [
        read_params(config.configurable, runtime.settings.max_output_tokens)
        for config in run_configs
    ]
    await admit_turns(request, runtime, turns, params)
    await hold_sessions(request, runtime, threads)


async def admit_turns(
    request: Request,
    runtime: ChatRuntime,
    turns: list[ChatRequest],
    params: list[ModelParams] | None = None,
    *,
    tools_tokens: int = 0,
) -> None:
    """Guard each turn, reserve each turn's worst case against the principal's budgets, then
    count the turns in its window; the decision goes to the request context for the rate-limit
    headers. `tools_tokens`: what the request's tool definitions add to each turn's prompt (a
    session's history is reserved once the run has fitted it, `cover_prompt`)."""
    counted = [
        validate_turn(
            turn.question,
            turn.messages,
            runtime.counter,
            runtime.settings.max_input_tokens,
            runtime.prompt_tokens,
            runtime.question_only,
        )
        for turn in turns
    ]
    context = request_context(request.scope)
    if runtime.settings.log_prompts:
        context.run.prompt = " | ".join(turn.question for turn in turns)
    principal = authenticated(request)
    limits = params or [ModelParams()] * len(turns)
    asks = [(0, p.max_tokens) for p in limits]
    caps = budget_caps(runtime, principal.quota)
    if caps.on:  # tokens counted again only when they matter
        asks = [
            (input_to_reserve(runtime, runtime.counter.count_messages(turn) + tools_tokens), limit)
            for turn, (_, limit) in zip(counted, asks, strict=True)
        ]
    decision, reservations = await admit(runtime, principal.name, asks, principal.quota)
    context.rate_limit = decision
    if not decision.allowed:
        raise refusal(decision, runtime.settings.rate_limit_window)
    admission = Admission(principal.name, caps)
    admission.took(decision, len(turns), reservations)
    context.admission = admission
    context.on_end.append(lambda: give_back(runtime, admission))


ConfigModifier = Callable[[dict[str, Any], Request], Awaitable[dict[str, Any]]]


def run_configurer(runtime_of: RuntimeOf) -> ConfigModifier:
    """LangServe's per-request config modifier of one route: server-side identity, thread and
    admission."""

    async def configure_run(config: dict[str, Any], request: Request) -> dict[str, Any]:
        configurable = dict(config.get("configurable") or {})
        configurable = admitted_configurable(request, runtime_of(), configurable)
        return {**config, "configurable": configurable}

    return configure_run


def admitted_configurable(
    request: Request, runtime: ChatRuntime, configurable: dict[str, Any]
) -> dict[str, Any]:
    """The `configurable` of an admitted run: its session's thread, and its facts: the
    principal and the admission that spares the graph a second count."""
    principal = authenticated(request).name
    context = request_context(request.scope)
    session_id = configurable.get(SESSION_ID)
    if session_id:
        configurable["thread_id"] = thread_id(principal, session_id, runtime.thread_route)
        context.run.session = session_id
    configurable[FACTS_KEY] = RunFacts(principal, admission=context.admission)
    return configurable
