"""Every route (the built-in chat, and the route file's) mounted with LangServe, behind
admission, with its session routes when it keeps sessions."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from langserve import add_routes

from api.chat_runnable import ChatRunnable
from api.chat_schema import ChatRequest
from api.langserve_body import admission
from api.sessions import session_routes
from graphs.route_services import RouteServices
from graphs.routes import CHAT, RouteSpec
from graphs.service import GraphService, RouteGraphs
from graphs.settings import Settings


def mount_routes(app: FastAPI, settings: Settings, specs: list[RouteSpec]) -> None:
    for spec in specs:
        if spec.path is not None:  # graph routes have none: the LangGraph API serves them
            mount_route(app, settings, spec, spec.path)


def mount_route(app: FastAPI, settings: Settings, spec: RouteSpec, path: str) -> None:
    """LangServe's endpoints and playground at the route's path. The graphs open in the app's
    lifespan, after mounting, so everything here looks them up when a request comes."""

    def graphs() -> RouteGraphs:
        service: GraphService = app.state.graphs
        return service.routes[spec.name]

    def services() -> RouteServices:
        return graphs().services

    runnable = ChatRunnable(
        graphs,
        batch_max_concurrency=settings.batch_max_concurrency,
        thread_route=spec.thread_route,
        sessions=spec.sessions,
    )
    if spec.name == CHAT:
        # The OpenAI-compatible route runs its turns through the chat route's runnable.
        app.state.chat_runnable = runnable
    add_routes(
        app,
        runnable,
        path=path,
        input_type=ChatRequest,
        playground_type="chat",
        dependencies=[Depends(admission(services))],
        disabled_endpoints=None if settings.playground_enabled else ["playground"],
    )
    if spec.sessions:
        app.include_router(session_routes(path, graphs))
