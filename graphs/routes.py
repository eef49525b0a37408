"""The routes graphgate serves: the built-in chat, and the chains a route file names.

A route file (`ROUTES_FILE`) is TOML, one table per route:

    [routes.summarize]
    path = "/summarize"                        # where LangServe mounts it
    chain = "examples.summarizer:make_chain"   # module:function(model) -> Runnable
    sessions = false                           # keep a history per session_id?
    model = "openai:gpt-4o-mini"               # optional: LLM_MODEL otherwise
    fallback = ""                              # optional: LLM_FALLBACK_MODEL; "" for none
    [routes.summarize.limits]                  # optional: the server's settings otherwise
    rate_limit_max = 10
    tokens_per_minute = 20000                  # this route's tokens, beside TOKENS_PER_MINUTE
    max_input_tokens = 4000
    max_output_tokens = 300

    [routes.agent]
    graph = "examples.agent:make_graph"        # module:function(model) -> StateGraph or compiled

A chain route runs inside the chat graph (guard, limit, its chain, persist) and LangServe
serves it at its path; a graph route runs as the team wrote it, state schema and all, and the
LangGraph API serves it by name (`api/langgraph/`), so it has no path. A route named `chat`
replaces the built-in one (and must be a chain). Each route is also listed in `langgraph.json`
(`graphs/langgraph_entry.py:<name>`), so `langgraph dev` serves the same graphs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from graphs.settings import Settings, read_toml_setting

ChainFactory = Callable[[BaseChatModel], Runnable[dict[str, Any], Any]]
GraphFactory = Callable[[BaseChatModel], "StateGraph[Any] | Pregel[Any, Any, Any, Any]"]
RouteKind = Literal["chat", "chain", "graph"]
CHAT = "chat"
ROUTE_NAME = r"^[a-z][a-z0-9_]{0,39}$"
ROUTE_PATH = r"^(/[a-z0-9][a-z0-9_-]*)+$"
FACTORY = r"^[\w.]+:\w+$"
# Paths graphgate itself serves (the LangGraph API's among them): a route may not shadow them.
RESERVED_PATHS = (
    "/v1",
    "/health",
    "/metrics",
    "/usage",
    "/docs",
    "/redoc",
    "/openapi.json",
    "/info",
    "/assistants",
    "/threads",
    "/runs",
)


class RouteFileError(ValueError):
    """A route file that cannot be served; the message names the file, route and field."""


class RouteLimits(BaseModel):
    """Per-route overrides of the server's limits (unset: the server's setting). The rate limit
    and `tokens_per_minute` count the principal's use of this route alone; `tokens_per_minute`
    is a cap of its own, beside `TOKENS_PER_MINUTE` (which counts every route)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_limit_max: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=0)
    max_input_tokens: int | None = Field(default=None, ge=1)
    max_output_tokens: int | None = Field(default=None, ge=1)
    request_timeout: float | None = Field(default=None, gt=0)

    def setting_overrides(self) -> dict[str, Any]:
        """The settings these limits replace (not `tokens_per_minute`, a cap of its own)."""
        return self.model_dump(exclude_none=True, exclude={"tokens_per_minute"})


class RouteSpec(BaseModel):
    """One route as the route file declares it: a `chain`, a `graph`, or neither (the built-in
    chat chain)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=ROUTE_NAME)
    path: str | None = Field(default=None, pattern=ROUTE_PATH)
    chain: str | None = Field(default=None, pattern=FACTORY)
    graph: str | None = Field(default=None, pattern=FACTORY)
    sessions: bool = True
    model: str | None = None
    fallback: str | None = None
    limits: RouteLimits = Field(default_factory=RouteLimits)

    @model_validator(mode="after")
    def _one_kind(self) -> RouteSpec:
        if self.graph is None and self.path is None:
            raise ValueError("a chain route needs a `path` (where LangServe mounts it)")
        if self.graph is not None and self.chain is not None:
            raise ValueError("a route names a `chain` or a `graph`, not both")
        if self.graph is not None and self.path is not None:
            raise ValueError(
                "a graph route has no `path`: the LangGraph API serves it by its name "
                "(/threads/{id}/runs with assistant_id = the route's name)"
            )
        if self.graph is not None and self.name == CHAT:
            raise ValueError("the route `chat` is a chain (`/v1` and `/chat` serve it)")
        return self

    @property
    def kind(self) -> RouteKind:
        if self.graph is not None:
            return "graph"
        return "chat" if self.chain is None else "chain"

    @property
    def thread_route(self) -> str | None:
        """The route part of the route's thread ids: none for the built-in chat, whose threads
        predate routes (`graphs/identity.py`)."""
        return None if self.name == CHAT else self.name

    def settings(self, base: Settings) -> Settings:
        """The server's settings with this route's model, fallback and limits."""
        update: dict[str, Any] = self.limits.setting_overrides()
        if self.model:
            update["llm_model"] = self.model
        if self.fallback is not None:
            update["llm_fallback_model"] = self.fallback or None
        return base.model_copy(update=update)

    def chain_factory(self) -> ChainFactory | None:
        """The chain factory the route names, imported; None for the built-in chat chain."""
        return None if self.chain is None else self._imported(self.chain)

    def graph_factory(self) -> GraphFactory:
        """The graph factory the route names, imported (a graph route's)."""
        if self.graph is None:
            raise RouteFileError(f"route {self.name} names no graph")
        factory: GraphFactory = self._imported(self.graph)
        return factory

    def _imported(self, factory_name: str) -> Any:
        module_name, _, attribute = factory_name.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            raise RouteFileError(f"route {self.name}: cannot import {factory_name}: {exc}") from exc
        if not callable(factory):
            raise RouteFileError(f"route {self.name}: {factory_name} is not callable")
        return factory


BUILT_IN_CHAT = RouteSpec(name=CHAT, path="/chat")


def load_route_specs(settings: Settings) -> list[RouteSpec]:
    """The built-in chat (unless the file redefines it), then the file's routes in order."""
    if settings.routes_file is None:
        return [BUILT_IN_CHAT]
    declared = read_route_file(settings.routes_file)
    specs = declared if any(s.name == CHAT for s in declared) else [BUILT_IN_CHAT, *declared]
    check_paths(specs, settings.routes_file)
    return specs


def read_route_file(path: Path) -> list[RouteSpec]:
    data = read_toml_setting(path, "ROUTES_FILE", RouteFileError)
    routes = data.get("routes")
    if not isinstance(routes, dict) or not routes:
        raise RouteFileError(f"ROUTES_FILE {path}: needs at least one [routes.<name>] table")
    specs = []
    for name, table in routes.items():
        try:
            specs.append(RouteSpec.model_validate({**table, "name": name}))
        except (ValidationError, TypeError) as exc:
            raise RouteFileError(f"ROUTES_FILE {path}, route {name!r}: {exc}") from None
    return specs


def check_paths(specs: list[RouteSpec], source: Path) -> None:
    paths = [spec.path for spec in specs if spec.path is not None]
    for spec in specs:
        if spec.path is None:
            continue
        if paths.count(spec.path) > 1:
            raise RouteFileError(f"ROUTES_FILE {source}: two routes at {spec.path}")
        if any(spec.path == p or spec.path.startswith(f"{p}/") for p in RESERVED_PATHS):
            raise RouteFileError(f"ROUTES_FILE {source}: {spec.path} is graphgate's own path")
