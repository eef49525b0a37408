"""The session saver's cost per turn in `make bench`: graphgate's `BoundedRedisSaver` (the
latest checkpoint only, as a chain's sessions keep, and the last ten, as a LangGraph API
thread keeps by default) beside langgraph-checkpoint-redis's shallow and full savers, on the
same Redis, in this process. A chat-shaped graph (the history grows by a question and a reply
per turn and is trimmed to 40 messages, one checkpoint per turn as graphgate writes it) runs
turn after turn of a few threads; the figure is the CPU time of this process per turn, which
is where the saver's serialisation and its Redis round trips are paid."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, RemoveMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import REMOVE_ALL_MESSAGES, add_messages
from redis.asyncio import Redis
from typing_extensions import TypedDict

from graphs.memory.history import fit_history
from graphs.memory.redis_saver import BoundedRedisSaver

KEPT_MESSAGES = 40
TTL_SECONDS = 600.0


class Session(TypedDict, total=False):
    history: Annotated[list[AnyMessage], add_messages]
    question: str


def chat_shaped(saver: BaseCheckpointSaver[Any]) -> Any:
    def answer(state: Session) -> dict[str, Any]:
        turn = [HumanMessage(state["question"]), AIMessage(f"an answer to {state['question']}")]
        kept = fit_history([*state.get("history", []), *turn], len(turn), KEPT_MESSAGES)
        return {"history": [RemoveMessage(id=REMOVE_ALL_MESSAGES), *kept]}

    builder = StateGraph(Session)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    builder.add_edge("answer", END)
    return builder.compile(checkpointer=saver)


async def turn_cost(saver: BaseCheckpointSaver[Any], threads: int, turns: int) -> float:
    """CPU ms per turn over `turns` turns of each of `threads` fresh threads."""
    graph = chat_shaped(saver)
    ids = [f"bench-{uuid.uuid4().hex[:8]}" for _ in range(threads)]
    began = time.process_time()
    for turn in range(turns):
        for thread in ids:
            config = {"configurable": {"thread_id": thread}}
            question = f"question {turn} about the sea and the stars"
            await graph.ainvoke({"question": question}, config, durability="exit")
    return 1000 * (time.process_time() - began) / (threads * turns)


async def stock(redis_url: str, shallow: bool) -> BaseCheckpointSaver[Any]:
    from langgraph.checkpoint.redis.aio import AsyncRedisSaver
    from langgraph.checkpoint.redis.ashallow import AsyncShallowRedisSaver

    kind = AsyncShallowRedisSaver if shallow else AsyncRedisSaver
    ttl = {"default_ttl": TTL_SECONDS / 60, "refresh_on_read": True}
    saver: BaseCheckpointSaver[Any] = kind(redis_url=redis_url, ttl=ttl)
    await saver.asetup()  # type: ignore[attr-defined]
    return saver


async def compare(redis_url: str, threads: int, turns: int) -> dict[str, Any]:
    redis = Redis.from_url(redis_url)
    makers: dict[str, Callable[[], Any]] = {
        "graphgate BoundedRedisSaver": lambda: _ready(BoundedRedisSaver(redis, "bench:", 600)),
        # A LangGraph API thread's default history (CHECKPOINT_HISTORY=10).
        "graphgate BoundedRedisSaver keeping 10": lambda: _ready(
            BoundedRedisSaver(redis, "bench:", 600, keep=10)
        ),
        "stock AsyncShallowRedisSaver": lambda: stock(redis_url, shallow=True),
        "stock AsyncRedisSaver": lambda: stock(redis_url, shallow=False),
    }
    costs = {}
    try:
        for name, make in makers.items():
            costs[name] = await turn_cost(await make(), threads, turns)
    finally:
        await redis.aclose()
    ours = costs["graphgate BoundedRedisSaver"]
    return {
        "threads": threads,
        "turns": turns,
        "cpu_ms_per_turn": costs,
        "ours_over_stock_shallow": ours / costs["stock AsyncShallowRedisSaver"],
    }


async def _ready(saver: BoundedRedisSaver) -> BoundedRedisSaver:
    return saver


def saver_costs(redis_url: str, threads: int, turns: int) -> dict[str, Any]:
    return asyncio.run(compare(redis_url, threads, turns))
