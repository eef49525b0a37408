"""Anchor: LangServe serving a naive four-node LangGraph graph (guard, limit, llm, persist)
with the stock `AsyncRedisSaver` of langgraph-checkpoint-redis, every checkpoint kept; the
session comes from the `X-Session-Id` header. With `BENCH_CHECKPOINTER=none` the same graph
runs without a checkpointer (no state at all): the floor of serving a graph through LangServe,
which the issue's table also measures."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Request
from langchain_core.messages import AnyMessage, BaseMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.checkpoint.redis.aio import AsyncRedisSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langserve import add_routes
from redis.asyncio import BlockingConnectionPool, Redis
from typing_extensions import TypedDict

from bench.anchors.model import instant_model

model = instant_model()


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


async def guard(state: State) -> dict[str, Any]:
    if len(state["messages"][-1].text) > 10_000:
        raise ValueError("too long")
    return {}


async def limit(state: State) -> dict[str, Any]:
    return {}


async def llm(state: State) -> dict[str, Any]:
    return {"messages": [await model.ainvoke(state["messages"][-20:])]}


async def persist(state: State) -> dict[str, Any]:
    return {}


def build(saver: AsyncRedisSaver | None) -> Any:
    graph = StateGraph(State)
    for name, node in (("guard", guard), ("limit", limit), ("llm", llm), ("persist", persist)):
        graph.add_node(name, node)
    graph.add_edge(START, "guard")
    graph.add_edge("guard", "limit")
    graph.add_edge("limit", "llm")
    graph.add_edge("llm", "persist")
    graph.add_edge("persist", END)
    return graph.compile(checkpointer=saver)


def checkpointer() -> AsyncRedisSaver | None:
    if os.environ.get("BENCH_CHECKPOINTER") == "none":
        return None
    pool = BlockingConnectionPool.from_url(os.environ["REDIS_URL"], max_connections=50)
    return AsyncRedisSaver(redis_client=Redis(connection_pool=pool))


saver = checkpointer()
graph = build(saver)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    if saver is not None:
        await saver.asetup()
    yield


def to_state(turn: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [HumanMessage(turn["question"])]}


class Turn(Runnable[dict[str, Any], BaseMessage]):
    """The graph behind LangServe: invoke runs it, stream sends the model's tokens."""

    def invoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> BaseMessage:
        raise NotImplementedError

    async def ainvoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> BaseMessage:
        state = await graph.ainvoke(to_state(input), config)
        message: BaseMessage = state["messages"][-1]
        return message

    async def astream(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[BaseMessage]:
        async for chunk, _ in graph.astream(to_state(input), config, stream_mode="messages"):
            yield chunk


async def with_session(config: dict[str, Any], request: Request) -> dict[str, Any]:
    session = request.headers.get("x-session-id", "default")
    return {**config, "configurable": {**config.get("configurable", {}), "thread_id": session}}


app = FastAPI(lifespan=lifespan)
add_routes(
    app,
    Turn().with_types(input_type=dict),
    path="/chat",
    per_req_config_modifier=with_session,
)


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
