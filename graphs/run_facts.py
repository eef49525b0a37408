"""The facts graphgate puts on a run, in one typed object under one `configurable` key: who the
run is for, what admission took for it and read and counted of its turn, the session lock it
holds, a batch's deferred writes, the `/v1` tools and end user, and who reads its stream.

The serving layer sets them (`with_facts`); the nodes, graphgate's model and the checkpointer
read them (`facts_of`). They are a Python object, not JSON, so no client can send one through
`configurable`. A run that no serving layer started (`langgraph dev`, in process) has none: it
acts for the principal its config names, else `anonymous`, and the graph admits it itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig

from graphs.identity import ANONYMOUS

if TYPE_CHECKING:
    from langchain_core.messages import AIMessageChunk

    from graphs.memory.checkpoint_read import Prefetched
    from graphs.memory.deferred_saver import DeferredWrites
    from graphs.memory.session_lock import HeldLock
    from graphs.model.params import ModelParams
    from graphs.model.turn import ToolRequest
    from graphs.nodes.limit import Admission
    from graphs.store.round_trip import RoundTrip

FACTS_KEY = "graphgate"


@dataclass(frozen=True)
class RunFacts:
    principal: str = ANONYMOUS
    # What the HTTP layer took for the request (None: the graph admits the run itself).
    admission: Admission | None = None
    params: ModelParams | None = None  # the generation parameters admission read
    turn_tokens: int | None = None  # the turn's tokens, counted once, by admission
    session_lock: HeldLock | None = None  # the session's, which the checkpointer confirms
    checkpoint: Prefetched | None = None  # the thread's hash, read in admission's round trip
    # The turn's last round trip (its checkpoint, usage, settlement and lock release), which
    # the serving layer sends when the run ends; None: each is written at once.
    ending: RoundTrip | None = None
    deferred: DeferredWrites | None = None  # a batch's turn: its writes wait for the batch
    tools: ToolRequest | None = None  # `/v1`'s tools and response format
    end_user: str | None = None  # `/v1`'s `user`: the caller's own end user
    # Nobody reads the run's stream (invoke, batch): the chain runs with `ainvoke`, without
    # LangChain's per-token callbacks and chunk objects.
    reply_only: bool = False
    # The serving layer reads the stream itself: each chunk goes straight to it, not through
    # LangGraph's custom stream, whose node task and waiter task cost a hand-off each per token.
    stream_to: Callable[[AIMessageChunk], None] | None = None


@dataclass(frozen=True)
class AdmittedTurn:
    """A turn the serving layer admitted: its session's thread (none for a one-off turn) and
    the facts its run carries."""

    thread: str | None
    facts: RunFacts


def facts_of(config: RunnableConfig | dict[str, Any]) -> RunFacts:
    """The run's facts, or those of a run no serving layer started."""
    configurable = config.get("configurable") or {}
    facts = configurable.get(FACTS_KEY)
    if isinstance(facts, RunFacts):
        return facts
    return RunFacts(principal=str(configurable.get("principal") or ANONYMOUS))


def with_facts(config: RunnableConfig, **changes: Any) -> RunnableConfig:
    """A copy of `config` whose facts carry `changes` (a batch's turns share the request's
    config: each gets its own copy)."""
    facts = dataclasses.replace(facts_of(config), **changes)
    return {**config, "configurable": {**config.get("configurable", {}), FACTS_KEY: facts}}
