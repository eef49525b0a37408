"""The chat graph as the Runnable LangServe serves: question in, AI message out.

Serving the compiled graph directly would expose its whole state as input and output, stream
node updates instead of tokens, and drop `session_id` (LangServe forwards only configurable keys
a runnable declares). This adapter declares `session_id`, returns the reply, and streams the
model's chunks as the llm node hands them over (`RunFacts.stream_to`). A turn of a session runs
holding the session's lock, so concurrent turns of one session run one after the other on the
updated history. A batch is stored all or nothing: its turns' checkpoints wait until every turn
has succeeded (`graphs/memory/deferred_saver.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.runnables import ConfigurableFieldSpec, Runnable, RunnableConfig
from langgraph.constants import INTERRUPT
from langgraph.types import Command, Interrupt
from pydantic import BaseModel
from redis.exceptions import RedisClusterException, RedisError

from api.admitted_run import (
    cancel_once,
    cancel_when_client_goes,
    graph_config,
    run_record,
    session_turn,
)
from api.chat_schema import PARAMETER_SPECS, SESSION_ID, SESSION_SPEC, ChatReply
from graphs.admission import refuse_repeated_sessions
from graphs.chat import ChatGraph
from graphs.errors import ClientClosedRequest, GraphgateError, InvalidInput
from graphs.graph_run import run_options
from graphs.memory.deferred_saver import DeferredWrites
from graphs.service import RouteGraphs
from graphs.state import ChatInput
from graphs.store.redis_client import store_unavailable
from middleware.request_context import current_request


def graph_input(request: dict[str, Any]) -> ChatInput | Command[Any]:
    """The turn, or the answer that resumes a session stopped at its chain's `interrupt`."""
    if request.get("resume") is not None:
        return Command(resume=request["resume"])
    return {"question": request.get("question") or "", "messages": request.get("messages") or []}


def interrupted_reply(interrupts: list[Interrupt]) -> AIMessage:
    """What a turn whose chain stopped at an `interrupt` answers: no text, and what the chain
    asks (`response_metadata.interrupts`); the session's next turn resumes it (`resume`)."""
    asked = [{"id": i.id, "value": i.value} for i in interrupts]
    return AIMessage(
        content="", response_metadata={"finish_reason": "interrupt", "interrupts": asked}
    )


async def refuse_resuming_a_session_not_waiting(
    graph: ChatGraph, turn: ChatInput | Command[Any], config: RunnableConfig
) -> None:
    """A `resume` is an answer: a session that asked nothing cannot take one."""
    if isinstance(turn, Command) and not (await graph.aget_state(config)).interrupts:
        raise InvalidInput("This session is not waiting for an answer (resume): nothing to resume.")


def interrupted_chunk(interrupts: list[Interrupt]) -> AIMessageChunk:
    """A stream's closing chunk when its chain stopped at an interrupt."""
    reply = interrupted_reply(interrupts)
    return AIMessageChunk(content="", response_metadata=reply.response_metadata)


class ChatRunnable(Runnable[dict[str, Any], AIMessage]):
    """One route's graph as LangServe serves it; `thread_route` names its sessions' threads
    (`graphs/identity.py`), `sessions` says whether it keeps any."""

    def __init__(
        self,
        route: Callable[[], RouteGraphs],
        *,
        batch_max_concurrency: int,
        thread_route: str | None = None,
        sessions: bool = True,
    ) -> None:
        self._route = route
        self._batch_max_concurrency = batch_max_concurrency
        self._thread_route = thread_route
        self._sessions = sessions

    def get_output_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        return ChatReply

    def _session_turn(self, config: RunnableConfig) -> AbstractAsyncContextManager[RunnableConfig]:
        route = self._route()
        return session_turn(config, route.services, route.graph.checkpointer, one_end_trip=True)

    def _graph(self, config: RunnableConfig) -> ChatGraph:
        route = self._route()
        return route.graph if "thread_id" in config["configurable"] else route.stateless_graph

    async def _run(self, input: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        async with self._session_turn(config) as run_config:
            graph, turn = self._graph(run_config), graph_input(input)
            await refuse_resuming_a_session_not_waiting(graph, turn, run_config)
            result: dict[str, Any] = await graph.ainvoke(
                turn, run_config, **run_options(run_config)
            )
            return result

    @property
    def config_specs(self) -> list[ConfigurableFieldSpec]:
        return [SESSION_SPEC, *PARAMETER_SPECS] if self._sessions else list(PARAMETER_SPECS)

    def invoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AIMessage:
        raise NotImplementedError("The chat runnable is async: use ainvoke or astream.")

    async def ainvoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AIMessage:
        return await self._reply(input, graph_config(config, self._thread_route, reply_only=True))

    async def _reply(self, input: dict[str, Any], config: RunnableConfig) -> AIMessage:
        """The reply of a run whose config `graph_config` made (with `reply_only`)."""
        run = asyncio.create_task(self._run(input, config))
        client_gone = cancel_when_client_goes(run)
        try:
            result = await run
        except asyncio.CancelledError:
            if run.cancelled() and client_gone is not None and client_gone.gone:
                raise ClientClosedRequest("The client closed the connection.") from None
            raise
        if INTERRUPT in result:
            return interrupted_reply(result[INTERRUPT])
        reply: AIMessage = result["reply"]
        if record := run_record():
            record.note_reply(reply.response_metadata)
        return reply

    async def abatch(
        self,
        inputs: list[dict[str, Any]],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[AIMessage]:
        """Run the turns of a batch at most `BATCH_MAX_CONCURRENCY` at a time, whatever the
        client asked for, and store them all or none. When one fails (and the client gets that
        error for the batch), the others are cancelled (LangChain's own `abatch` lets them run
        on) and no turn is stored, those that finished included: a retry must not repeat
        them. With `return_exceptions`, each turn is stored as it would be alone."""
        given = config if isinstance(config, list) else [config or {}] * len(inputs)
        named = [c.get("configurable", {}).get(SESSION_ID) for c in given]
        refuse_repeated_sessions([session for session in named if session])
        deferred = DeferredWrites()
        configs = [
            graph_config(turn_config, self._thread_route, index, reply_only=True, deferred=deferred)
            for index, turn_config in enumerate(given)
        ]
        slots = asyncio.Semaphore(self._batch_max_concurrency)

        async def one(turn: dict[str, Any], turn_config: RunnableConfig) -> AIMessage:
            async with slots:
                return await self._reply(turn, turn_config)

        runs = [asyncio.ensure_future(one(i, c)) for i, c in zip(inputs, configs, strict=True)]
        try:
            if return_exceptions:
                outcomes = await asyncio.gather(*runs, return_exceptions=True)
            else:
                outcomes = await asyncio.gather(*runs)
        except BaseException:
            for run in runs:
                run.cancel()
            await asyncio.wait(runs)
            await deferred.discard()
            raise
        await deferred.commit()
        return list(outcomes)  # type: ignore[arg-type]

    async def astream(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[AIMessageChunk]:
        chunks: asyncio.Queue[AIMessageChunk | None] = asyncio.Queue()
        config = graph_config(config, self._thread_route, stream_to=chunks.put_nowait)

        async def run_graph() -> None:
            try:
                async with self._session_turn(config) as run_config:
                    graph, turn = self._graph(run_config), graph_input(input)
                    await refuse_resuming_a_session_not_waiting(graph, turn, run_config)
                    result = await graph.ainvoke(turn, run_config, **run_options(run_config))
                    if INTERRUPT in result:  # the chain stopped at an interrupt: no reply
                        chunks.put_nowait(interrupted_chunk(result[INTERRUPT]))
            finally:
                chunks.put_nowait(None)

        # The run lives in its own task so that it can be stopped even when our consumer is
        # abandoned mid-stream (LangServe's generator is never closed when its client drops).
        run = asyncio.create_task(run_graph())
        cancel_when_client_goes(run)
        try:
            record = run_record()
            while (chunk := await chunks.get()) is not None:
                if record and "model" in chunk.response_metadata:  # graphgate's closing chunk
                    record.note_reply(chunk.response_metadata)
                yield chunk
            await run
        except GraphgateError as exc:
            if request := current_request():
                request.stream_failure = exc
            raise
        except (RedisError, RedisClusterException) as exc:
            unavailable = store_unavailable(exc)
            if request := current_request():
                request.stream_failure = unavailable
            raise unavailable from None
        finally:
            cancel_once(run)
