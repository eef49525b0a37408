"""Anchor: the FastAPI app a production tutorial writes by hand: the caller's API key checked
against the environment, a fixed-window rate limit and the session's history in Redis, and a
`prompt | model` chain with a history placeholder; `/chat/stream` sends tokens with
sse-starlette. No checkpointer, budgets, usage ledger or metrics."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI, Header, HTTPException, Request
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    message_to_dict,
    messages_from_dict,
)
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from sse_starlette.sse import EventSourceResponse

from bench.anchors.model import instant_model

API_KEYS = set(os.environ.get("BENCH_API_KEYS", "bench-key").split(","))
RATE_LIMIT, WINDOW, HISTORY, TTL = 1_000_000, 60, 20, 3600

prompt = ChatPromptTemplate.from_messages(
    [
        ("system", "You are a helpful assistant."),
        MessagesPlaceholder("history"),
        ("human", "{question}"),
    ]
)
chain = prompt | instant_model()
state: dict[str, Any] = {}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool = aioredis.BlockingConnectionPool.from_url(os.environ["REDIS_URL"], max_connections=50)
    state["redis"] = aioredis.Redis(connection_pool=pool)
    yield
    await state["redis"].aclose()


app = FastAPI(lifespan=lifespan)


async def admit(authorization: str | None) -> aioredis.Redis:
    key = (authorization or "").removeprefix("Bearer ")
    if key not in API_KEYS:
        raise HTTPException(401, "bad key")
    redis: aioredis.Redis = state["redis"]
    window = f"tutorial:rate:{key[-12:]}"
    count = await redis.incr(window)
    if count == 1:
        await redis.expire(window, WINDOW)
    if count > RATE_LIMIT:
        raise HTTPException(429, "rate limited")
    return redis


async def history(redis: aioredis.Redis, session: str) -> list[BaseMessage]:
    stored = await redis.lrange(f"tutorial:history:{session}", -HISTORY, -1)
    return messages_from_dict([json.loads(item) for item in stored])


async def remember(redis: aioredis.Redis, session: str, question: str, answer: str) -> None:
    key = f"tutorial:history:{session}"
    turn = [HumanMessage(question), AIMessage(answer)]
    async with redis.pipeline(transaction=False) as pipe:
        pipe.rpush(key, *(json.dumps(message_to_dict(m)) for m in turn))
        pipe.ltrim(key, -HISTORY, -1)
        pipe.expire(key, TTL)
        await pipe.execute()


def turn_of(body: dict[str, Any]) -> tuple[str, str]:
    return body["input"]["question"], body["config"]["configurable"]["session_id"]


@app.post("/chat/invoke")
async def invoke(request: Request, authorization: str | None = Header(None)) -> dict[str, Any]:
    redis = await admit(authorization)
    question, session = turn_of(await request.json())
    reply = await chain.ainvoke({"question": question, "history": await history(redis, session)})
    await remember(redis, session, question, reply.text)
    return {"output": {"content": reply.text}}


@app.post("/chat/stream")
async def stream(request: Request, authorization: str | None = Header(None)) -> EventSourceResponse:
    redis = await admit(authorization)
    question, session = turn_of(await request.json())
    past = await history(redis, session)

    async def events() -> AsyncIterator[dict[str, str]]:
        parts = []
        async for chunk in chain.astream({"question": question, "history": past}):
            parts.append(chunk.text)
            yield {"event": "data", "data": json.dumps({"content": chunk.text})}
        await remember(redis, session, question, "".join(parts))
        yield {"event": "end", "data": ""}

    return EventSourceResponse(events())


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
