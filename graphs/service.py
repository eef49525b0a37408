"""The graphs' lifecycle: one async context that opens and closes all that the routes' graphs
need (the Redis client and its module check, the cache's preparation, the checkpointer's
set-up, each route's services and chain) and builds the graphs. The server's lifespan and the
LangGraph server's factories (`graphs/langgraph_entry.py`) both open it, so a graph never runs
on half-prepared parts under either.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from redis.asyncio import Redis

from graphs.chat import ChatGraph, build_chat_graph
from graphs.clock import SYSTEM_CLOCK, Clock
from graphs.graph_routes import GraphRoute, build_graph_route
from graphs.memory.checkpoint import build_checkpointer
from graphs.memory.run_event_log import RunEventLog, build_run_event_log
from graphs.memory.run_leases import RunLeases, build_run_leases
from graphs.memory.thread_records import ThreadRecords, build_thread_records
from graphs.route_services import RouteServices, build_services, services_for
from graphs.routes import CHAT, RouteSpec, load_route_specs
from graphs.settings import Settings
from graphs.store.redis_client import (
    RedisClient,
    build_redis,
    describe_missing,
    missing_modules,
    required_modules,
)
from graphs.store.replicated_write import Replication

logger = logging.getLogger("graphgate")


@dataclass
class RouteGraphs:
    """One route's services and graphs: with the checkpointer (its sessions) and without."""

    spec: RouteSpec
    services: RouteServices
    graph: ChatGraph
    # One-off turns (no session) run without a checkpointer: nobody could read their state.
    stateless_graph: ChatGraph


@dataclass
class GraphService:
    """The served routes: chains in the chat graph (`routes`, LangServe's and `/v1`'s) and the
    teams' own graphs (`graph_routes`, the LangGraph API's)."""

    routes: dict[str, RouteGraphs]
    graph_routes: dict[str, GraphRoute]
    checkpointer: BaseCheckpointSaver[Any] | None
    redis: RedisClient | None
    threads: ThreadRecords  # the LangGraph API's thread and run records
    run_events: RunEventLog  # and its resumable runs' events
    leases: RunLeases  # and who runs its background runs

    @property
    def chat(self) -> RouteGraphs:
        return self.routes[CHAT]


async def require_redis_modules(redis: RedisClient, settings: Settings) -> None:
    """Refuse a configuration whose features need a module this Redis lacks."""
    missing = await missing_modules(redis, required_modules(settings))
    if missing:
        raise RuntimeError(
            f"Redis lacks what the configuration needs ({describe_missing(missing)}): use "
            "Redis 8 or Redis Stack 7.4, or turn the feature off. `make redis` starts one."
        )


def build_routes(
    base: RouteServices,
    specs: list[RouteSpec],
    redis: RedisClient | None,
    savers: tuple[BaseCheckpointSaver[Any] | None, BaseCheckpointSaver[Any] | None],
) -> tuple[dict[str, RouteGraphs], dict[str, GraphRoute]]:
    """Each route's services and graphs, chain routes and graph routes apart; imports the
    routes' modules. `savers`: the chains' sessions' checkpointer, then the graphs' threads'."""
    checkpointer, thread_checkpointer = savers
    routes, graph_routes = {}, {}
    for spec in specs:
        services = services_for(base, spec, redis)
        if spec.kind == "graph":
            graph_routes[spec.name] = build_graph_route(services, spec, thread_checkpointer)
            continue
        chain = spec.chain_factory()
        graph = build_chat_graph(services, checkpointer if spec.sessions else None, chain)
        routes[spec.name] = RouteGraphs(
            spec, services, graph, build_chat_graph(services, None, chain)
        )
    return routes, graph_routes


def announce(service: GraphService) -> None:
    """Say loudly, at start-up, when the service runs on embedded or demo defaults."""
    if service.redis is None:
        logger.warning(
            "EMBEDDED MODE: no REDIS_URL; sessions, limits and state live in this process "
            "only and vanish when it stops. Run one worker only."
        )
    served: list[RouteGraphs | GraphRoute] = [*service.routes.values()]
    served += service.graph_routes.values()
    for route in served:
        name = route.spec.name
        if route.services.uses_demo_model:
            logger.warning(
                "DEMO MODEL on route %s: no OPENAI_API_KEY/OPENAI_BASE_URL; replies come from "
                "the offline demo model, which echoes the conversation.",
                name,
            )
        models = ", ".join(spec.label for spec, _ in route.services.models)
        where = route.spec.path or "the LangGraph API"
        logger.info("graphgate route %s at %s: models %s", name, where, models)
        warn_small_token_caps(name, route.services)


def warn_small_token_caps(name: str, services: RouteServices) -> None:
    """A token cap that one request's worst case fills: say so at start-up, not only in the
    400 of every request that sends no `max_tokens`."""
    settings = services.settings
    floor = settings.max_output_tokens + services.prompt_tokens
    caps = {
        "TOKENS_PER_MINUTE": settings.tokens_per_minute,
        "its tokens_per_minute": services.route.limits.tokens_per_minute or 0,
    }
    for cap, value in caps.items():
        if 0 < value < floor:
            logger.warning(
                "route %s: %s=%d is below one request's worst case without max_tokens "
                "(MAX_OUTPUT_TOKENS=%d plus the prompt): such requests are refused with 400; "
                "lower MAX_OUTPUT_TOKENS (or the route's max_output_tokens) or raise the cap.",
                name,
                cap,
                value,
                settings.max_output_tokens,
            )


@asynccontextmanager
async def open_graphs(
    settings: Settings, *, with_checkpointer: bool = True, clock: Clock = SYSTEM_CLOCK
) -> AsyncIterator[GraphService]:
    """Every route's graphs, ready to run; `with_checkpointer=False` for a host that brings its
    own persistence (the LangGraph server); `clock` for the budgets and windows (a test's).
    Reading files and importing chain modules happen off the event loop."""
    redis = build_redis(settings)
    try:
        if redis is not None:
            await require_redis_modules(redis, settings)
        base = await asyncio.to_thread(build_services, settings, redis, clock)
        if base.cache is not None:
            await base.cache.prepare()
        checkpointer = thread_checkpointer = None
        if with_checkpointer:
            replication = Replication(
                settings.redis_wait_replicas, int(settings.redis_wait_timeout * 1000)
            )
            prefix, ttl = settings.redis_prefix, settings.session_ttl
            compact = settings.checkpoint_compact_messages
            checkpointer = await build_checkpointer(
                redis,
                prefix=prefix,
                ttl_seconds=ttl,
                replication=replication,
                compact_messages=compact,
            )
            # The LangGraph API's threads keep older checkpoints too (regenerate, branch).
            thread_checkpointer = await build_checkpointer(
                redis,
                prefix=prefix,
                ttl_seconds=ttl,
                replication=replication,
                keep=settings.checkpoint_history,
                compact_messages=compact,
            )
        specs = await asyncio.to_thread(load_route_specs, settings)
        routes, graph_routes = await asyncio.to_thread(
            build_routes, base, specs, redis, (checkpointer, thread_checkpointer)
        )
        threads = build_thread_records(redis, settings.redis_prefix, settings.session_ttl)
        run_events = build_run_event_log(
            redis, settings.redis_prefix, settings.run_events_max, settings.run_events_ttl
        )
        leases = build_run_leases(
            redis, settings.redis_prefix, settings.run_lease, settings.session_ttl
        )
        service = GraphService(
            routes, graph_routes, checkpointer, redis, threads, run_events, leases
        )
        announce(service)
        yield service
    finally:
        if redis is not None:
            await redis.aclose()
            if isinstance(redis, Redis):  # its pool was built apart, so it outlives aclose
                await redis.connection_pool.disconnect()
