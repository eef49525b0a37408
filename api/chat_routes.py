"""LangServe's routes for the chat runnable at `/chat`, behind admission."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from langserve import add_routes

from api.admission import admit_chat_request, configure_run
from api.chat_runnable import ChatRequest, ChatRunnable
from api.service import ChatService
from graphs.runtime.settings import Settings


def add_chat_routes(app: FastAPI, settings: Settings) -> None:
    def graph() -> ChatService:
        service: ChatService = app.state.chat
        return service

    runnable = ChatRunnable(
        lambda: (graph().graph, graph().stateless_graph),
        batch_max_concurrency=settings.batch_max_concurrency,
    )
    # The OpenAI-compatible route runs turns through the same runnable.
    app.state.chat_runnable = runnable
    add_routes(
        app,
        runnable,
        path="/chat",
        input_type=ChatRequest,
        playground_type="chat",
        dependencies=[Depends(admit_chat_request)],
        per_req_config_modifier=configure_run,
        disabled_endpoints=None if settings.playground_enabled else ["playground"],
    )
