"""A LangGraph API run, admitted as every turn is (`api/admission.py`): the assistant's graph
route, the caller's thread (404 for another principal's), the input's size bounded, the
budgets and the rate limit (429 before any model call), and last the thread's session lock,
under the run's `multitask_strategy` (`reject`: 409 at once; `enqueue`: wait for the running
one, up to `QUEUE_TIMEOUT`). Nothing is written before admission has said yes; then the thread
is bound to the assistant's graph on its first run and the run's record written.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from langchain_core.messages import BaseMessage, HumanMessage, convert_to_messages
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver

from api.admission import admit
from api.admitted_run import graph_config
from api.langgraph.background_lease import worker_id
from api.langgraph.bodies import NOT_YET, RunCreate
from api.langgraph.events import run_metadata
from api.langgraph.live_runs import stop_thread_runs
from api.langgraph.served import checkpoint_config, owned_thread, route_of
from api.langgraph.wire import dumps
from graphs.admission import Ask, AskedTurn
from graphs.errors import (
    RETRY_BUSY_SECONDS,
    InvalidInput,
    NotFound,
    RateLimited,
    ThreadConflict,
    ValidationFailed,
)
from graphs.graph_routes import GraphRoute
from graphs.identity import Principal
from graphs.memory.thread_records import CancelAction, StoredRun, StoredThread
from graphs.model.params import read_params
from graphs.nodes.guard import refuse_non_text
from graphs.route_services import RouteServices
from graphs.run_facts import FACTS_KEY, with_facts
from graphs.service import GraphService

# Client `configurable` keys that would address another thread or checkpoint, or pose as
# graphgate's own facts or principal (`principal` names one under `langgraph dev`): dropped.
RESERVED_CONFIGURABLE = (
    "thread_id",
    "checkpoint_id",
    "checkpoint_ns",
    "checkpoint_map",
    "principal",
    FACTS_KEY,
)


@dataclass
class AdmittedRun:
    """A run that may start: its route, its records (none for a stateless run's thread) and
    the input and config it runs with."""

    route: GraphRoute
    principal: str
    record: StoredRun
    thread: StoredThread | None
    graph_input: Any
    config: RunnableConfig

    @property
    def location(self) -> str:
        """Where the run's resource is (the `Content-Location` the clients read its id from)."""
        if self.thread is None:
            return f"/runs/{self.record.run_id}"
        return f"/threads/{self.thread.thread_id}/runs/{self.record.run_id}"


def input_messages(graph_input: Any) -> list[BaseMessage]:
    """The messages of a graph's input (`{"messages": [...]}`), as the guard reads them."""
    given = graph_input.get("messages") if isinstance(graph_input, dict) else None
    if given is None:
        return []
    try:
        return convert_to_messages(given if isinstance(given, list) else [given])
    except (ValueError, TypeError, NotImplementedError, KeyError):
        raise InvalidInput("input.messages holds something that is not a message.") from None


def input_tokens(services: RouteServices, graph_input: Any, messages: list[BaseMessage]) -> int:
    """The input's tokens: its messages', and the rest of it as JSON text."""
    rest = graph_input
    if isinstance(graph_input, dict):
        rest = {key: value for key, value in graph_input.items() if key != "messages"}
    tokens = services.counter.count_messages(messages)
    if rest:
        tokens += services.counter.count_text(json.dumps(rest, default=str))
    return tokens


def run_ask(
    route: GraphRoute,
    body: RunCreate,
    thread: str | None,
    make_way: Callable[[], Awaitable[None]] | None = None,
) -> Ask:
    """The run as admission reads it; a command's values count as input too."""
    services = route.services
    if body.command is not None and thread is None:
        raise InvalidInput("A command resumes or steers a thread's run: send it on a thread.")
    if body.on_completion == "keep" and thread is None:
        raise ValidationFailed(
            f"on_completion 'keep' {NOT_YET} on a streamed or awaited stateless run, which "
            "keeps nothing; a background one (POST /runs) keeps its thread."
        )
    if body.from_checkpoint is not None and thread is None:
        raise ValidationFailed(
            "checkpoint_id (or checkpoint) names a thread's checkpoint: a stateless run has "
            "none; send the run on its thread."
        )
    if body.stream_resumable and thread is None:
        raise InvalidInput("A resumable run is rejoined on its thread: start it on a thread.")
    messages = input_messages(body.input)
    refuse_non_text(messages)
    question = next((m.text for m in reversed(messages) if isinstance(m, HumanMessage)), "")
    params = read_params(body.config.configurable, services.settings.max_output_tokens)
    counted = input_tokens(services, body.input, messages)
    if body.command is not None:
        command = body.command.model_dump(exclude_none=True)
        counted += services.counter.count_text(json.dumps(command, default=str))
    asked = AskedTurn(question, messages, thread, params, counted)
    strategy = body.multitask_strategy
    if strategy in ("interrupt", "rollback"):
        return Ask([asked], session_conflict="enqueue", make_way=make_way)
    return Ask([asked], session_conflict=strategy)


async def thread_to_run(
    service: GraphService, principal: str, route: GraphRoute, body: RunCreate, thread: str
) -> StoredThread | None:
    """The caller's thread the run continues (None: `if_not_exists=create` makes it, once
    admitted); a thread bound to another graph cannot run this one."""
    try:
        stored = await owned_thread(service, principal, thread)
    except NotFound:
        if body.if_not_exists == "create":
            return None
        raise
    bound = stored.metadata.get("graph_id")
    if bound not in (None, route.spec.name):
        raise ThreadConflict(
            f"Thread {thread} runs the graph {bound!r}; start a new thread for {route.spec.name!r}."
        )
    return stored


async def refuse_a_checkpoint_not_kept(
    route: GraphRoute, principal: str, body: RunCreate, thread: str
) -> None:
    """A run from a checkpoint the thread no longer keeps would start from nothing: 404."""
    wanted, saver = body.from_checkpoint, route.graph.checkpointer
    if wanted is None or not isinstance(saver, BaseCheckpointSaver):
        return
    config = checkpoint_config(route, principal, thread)
    config["configurable"]["checkpoint_id"] = wanted
    if await saver.aget_tuple(config) is None:
        raise NotFound(
            f"Checkpoint {wanted} of thread {thread} not found: a thread keeps its last "
            "CHECKPOINT_HISTORY checkpoints."
        )


async def bind_thread(
    service: GraphService, principal: str, route: GraphRoute, body: RunCreate, record: StoredRun
) -> StoredThread:
    """The run's thread, made if need be and bound to its graph, and the run's record. Read
    again under the thread's lock: a run admitted before this one may have made or bound it
    meanwhile."""
    stored = await thread_to_run(service, principal, route, body, record.thread_id)
    stored = stored or StoredThread(record.thread_id, record.created_at, record.created_at)
    bound = {"graph_id": route.spec.name, "assistant_id": route.spec.name}
    stored = stored.touched(metadata={**bound, **stored.metadata})
    await service.threads.put(principal, stored)
    await service.threads.put_run(principal, record)
    return stored


def run_config(
    body: RunCreate, route: GraphRoute, run_id: str, thread: str | None
) -> RunnableConfig:
    """The client's config, without what would address another thread or pose as graphgate's
    facts, with the run's metadata; `graph_config` adds the admitted thread and facts."""
    configurable = {
        key: value
        for key, value in body.config.configurable.items()
        if key not in RESERVED_CONFIGURABLE and not key.startswith("__")
    }
    metadata = {
        **body.metadata,
        "graph_id": route.spec.name,
        "assistant_id": route.spec.name,
        "run_id": run_id,
        "thread_id": thread,
    }
    config: RunnableConfig = {
        "configurable": configurable,
        "metadata": metadata,
        "tags": body.config.tags,
        "run_id": uuid.UUID(run_id),
    }
    if body.config.recursion_limit is not None:
        config["recursion_limit"] = body.config.recursion_limit
    if body.from_checkpoint is not None:
        configurable["checkpoint_id"] = body.from_checkpoint
    return graph_config(config, route.spec.thread_route)


async def count_background_run(
    service: GraphService, route: GraphRoute, principal: str, run_id: str
) -> None:
    """One more background run of the principal, or 429 if it has as many as it may; this
    worker owns its lease from now, before any record of it is written."""
    most = route.services.settings.background_runs_max
    if not await service.leases.admit(principal, run_id, most):
        raise RateLimited(
            f"This principal has BACKGROUND_RUNS_MAX={most} background runs running; "
            "wait for one to end.",
            retry_after=RETRY_BUSY_SECONDS,
        )
    await service.leases.take(principal, run_id, worker_id())


def resumed_config(
    route: GraphRoute, principal: str, stored: StoredRun, body: RunCreate
) -> RunnableConfig:
    """The config of a background run taken over from a dead worker (`body`, what it was
    asked): as its request's was, with the thread and the principal that no request carries
    now."""
    config = run_config(body, route, stored.run_id, stored.thread_id)
    internal = checkpoint_config(route, principal, stored.thread_id)["configurable"]
    config["configurable"]["thread_id"] = internal["thread_id"]
    return with_facts(config, principal=principal)


async def admit_run(
    request: Request,
    service: GraphService,
    caller: Principal,
    body: RunCreate,
    thread: str | None,
    background: bool = False,
) -> AdmittedRun:
    """Admit a run of `body` on the caller's `thread` (None: a stateless run), then write its
    records; every refusal comes before any write. A `background` run counts among the
    principal's (`BACKGROUND_RUNS_MAX`) and keeps what it was asked, to be started again."""
    route = route_of(service, body.assistant_id)
    stored = (
        None if thread is None else await thread_to_run(service, caller.name, route, body, thread)
    )

    # `interrupt` and `rollback` stop the thread's running run, then wait for it.
    action: CancelAction = "rollback" if body.multitask_strategy == "rollback" else "interrupt"
    make_way = None
    if thread is not None:
        make_way = functools.partial(
            stop_thread_runs, request, service, caller.name, thread, action
        )
    await admit(request, route.services, read=lambda: run_ask(route, body, thread, make_way))
    now = time.time()
    run_id = str(uuid.uuid4())
    kwargs: dict[str, Any] = {}
    if background:
        await count_background_run(service, route, caller.name, run_id)
        kwargs = body.model_dump(mode="json", exclude_none=True)
    record = StoredRun(
        run_id,
        thread or "",
        route.spec.name,
        now,
        now,
        "running",
        body.metadata,
        body.multitask_strategy or route.services.settings.session_conflict,
        kwargs,
    )
    if thread is not None:
        await refuse_a_checkpoint_not_kept(route, caller.name, body, thread)
        try:
            stored = await bind_thread(service, caller.name, route, body, record)
            if body.stream_resumable:
                # Its kept events begin with its metadata, before the answer: a client may
                # rejoin at once, before the run has sent anything else.
                metadata = dumps(run_metadata(run_id))
                await service.run_events.append(caller.name, run_id, "metadata", metadata)
        except BaseException:
            if background:  # never acknowledged: it neither counts nor is to be taken over
                await service.leases.end(caller.name, run_id, worker_id())
            raise
    config = run_config(body, route, run_id, thread)
    return AdmittedRun(route, caller.name, record, stored, body.graph_input, config)
