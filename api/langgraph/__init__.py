"""The LangGraph server's HTTP API, at the server's root as the LangGraph server serves it, so a
LangGraph client (`langgraph-sdk`, `RemoteGraph`, agent-chat-ui) changes only its URL:
`/info`, assistants (the graph routes), threads and runs; what it does not serve yet is a 404
naming it. Every endpoint acts for the authenticated principal, on its own threads only."""

from __future__ import annotations

from fastapi import FastAPI

from api.langgraph import assistants, not_served, runs, threads
from api.langgraph.live_runs import LiveRuns


def install_langgraph_api(app: FastAPI) -> None:
    app.state.live_runs = LiveRuns()
    app.include_router(assistants.router)
    app.include_router(threads.router)
    app.include_router(runs.router)
    app.include_router(not_served.router)
