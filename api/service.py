"""The chat service of one process: Redis client, runtime, checkpointer and compiled graph,
opened in the app's lifespan and closed with it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from redis.asyncio import Redis

from graphs.chat import ChatGraph, build_chat_graph
from graphs.runtime.checkpoint import build_checkpointer
from graphs.runtime.context import ChatRuntime, build_runtime
from graphs.runtime.redis_client import build_redis, missing_modules
from graphs.runtime.settings import Settings

logger = logging.getLogger("graphgate")


@dataclass
class ChatService:
    runtime: ChatRuntime
    graph: ChatGraph
    # One-off turns (no session) run without a checkpointer: nobody could read their state.
    stateless_graph: ChatGraph
    checkpointer: BaseCheckpointSaver[Any]
    redis: Redis | None


async def require_redis_modules(redis: Redis) -> None:
    missing = await missing_modules(redis)
    if missing:
        raise RuntimeError(
            f"Redis lacks the modules {', '.join(missing)}: graphgate needs Redis 8 or "
            "Redis Stack 7.4 (Query Engine and JSON). `make redis` starts one locally."
        )


def announce(service: ChatService, settings: Settings) -> None:
    """Say loudly, at start-up, when the service runs on embedded or demo defaults."""
    if service.redis is None:
        logger.warning(
            "EMBEDDED MODE: no REDIS_URL; sessions, limits and state live in this process "
            "only and vanish when it stops. Run one worker only."
        )
    if service.runtime.uses_demo_model:
        logger.warning(
            "DEMO MODEL: no OPENAI_API_KEY/OPENAI_BASE_URL; replies come from the offline demo "
            "model, which echoes the conversation."
        )
    models = ", ".join(spec.label for spec, _ in service.runtime.models)
    logger.info("graphgate serving models: %s", models)


@asynccontextmanager
async def open_chat_service(settings: Settings) -> AsyncIterator[ChatService]:
    redis = build_redis(settings)
    try:
        if redis is not None:
            await require_redis_modules(redis)
        runtime = build_runtime(settings, redis)
        if runtime.cache is not None:
            await runtime.cache.prepare()
        checkpointer = await build_checkpointer(redis, ttl_seconds=settings.session_ttl)
        service = ChatService(
            runtime,
            build_chat_graph(runtime, checkpointer),
            build_chat_graph(runtime),
            checkpointer,
            redis,
        )
        announce(service, settings)
        yield service
    finally:
        if redis is not None:
            await redis.aclose()
            await redis.connection_pool.disconnect()
