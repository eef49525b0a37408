"""A LangServe route's body as admission reads it: the turns of an invoke, stream or batch,
each with its config over the URL's (the playground's `/c/{config_hash}/` routes), checked
before LangServe reads it, so that LangServe only ever reads a body that is known to be sound;
and the FastAPI dependency that admits every LangServe route's requests (`api/admission.py`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from langserve.api_handler import _config_from_hash
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.admission import admit
from api.chat_schema import SESSION_ID, ChatRequest
from api.validation_errors import describe
from graphs.admission import Ask, AskedTurn
from graphs.errors import InvalidInput, ValidationFailed
from graphs.model.params import read_params
from graphs.route_services import RouteServices
from middleware.request_context import request_context

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


def read_body(body: Any, endpoint: str) -> tuple[list[ChatRequest], list[RunConfig]]:
    """The turns and configs of a chat request body, or 422 naming what is wrong (a batch's
    config list must match its inputs, as LangServe checks after admission)."""
    try:
        if endpoint == "batch":
            batch = BatchBody.model_validate(body)
            if isinstance(batch.config, list) and len(batch.config) != len(batch.inputs):
                raise ValidationFailed(
                    f"Number of configs ({len(batch.config)}) must match number of inputs "
                    f"({len(batch.inputs)})."
                )
            return batch.inputs, batch.configs()
        single = InvokeBody.model_validate(body)
        return [single.input], [single.config]
    except ValidationError as exc:
        raise ValidationFailed(describe(exc.errors())) from None


ServicesOf = Callable[[], RouteServices]


def langserve_ask(services: RouteServices, body: Any, from_url: RunConfig, endpoint: str) -> Ask:
    """A LangServe body's turns, each with its session and generation parameters from its
    config over the URL's."""
    turns, configs = read_body(body, endpoint)
    ceiling = services.settings.max_output_tokens
    return Ask(
        [
            AskedTurn(
                turn.question,
                turn.messages,
                config.configurable.get(SESSION_ID) or None,
                read_params(config.configurable, ceiling),
                resumed_tokens(services, turn, config),
            )
            for turn, config in zip(turns, merged(from_url, configs), strict=True)
        ]
    )


def resumed_tokens(services: RouteServices, turn: ChatRequest, config: RunConfig) -> int | None:
    """A turn that answers an interrupt has no question for the guard: its answer's size (as
    JSON text) is what is counted and bounded. It resumes a session: it must name one."""
    if turn.resume is None:
        return None
    if not config.configurable.get(SESSION_ID):
        raise InvalidInput("resume answers a session's interrupt: name the session_id.")
    return services.counter.count_text(json.dumps(turn.resume, default=str))


def admission(services_of: ServicesOf) -> Callable[[Request], Awaitable[None]]:
    """The FastAPI dependency that admits the requests of one LangServe route."""

    async def admit_route_request(request: Request) -> None:
        services = services_of()
        from_url = hash_config(request, services.settings.max_config_hash_chars)
        endpoint = request.url.path.rsplit("/", 1)[-1]
        if request.method != "POST" or endpoint not in ADMITTED_ENDPOINTS:
            return
        body = request_context(request.scope).json_body
        size = batch_size(body) if endpoint == "batch" else 1
        await admit(
            request, services, lambda: langserve_ask(services, body, from_url, endpoint), size
        )

    return admit_route_request
