"""llm: the route's chain, run for the turn under the deadline, its output streamed.

The chain (the chat route's `prompt | model`, or a team's own) takes `history` (the session's
messages, trimmed to fit), `turn` (the turn's messages) and `question` (the text of the turn's
last human message), and calls graphgate's model (`graphs/model/gateway_model.py`) for its answers.
Each chunk it produces goes to the reader the serving layer gave the run (else to the graph's
custom stream, as under `langgraph dev`) as it arrives, so `/chat/stream` carries the model's
tokens rather than node updates. The reply's metadata sums every model
call of the turn. The turn's usage goes to the ledger here, as soon as the chain has answered
(or, marked partial, when it fails or is cancelled), replacing its budget reservations.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    message_chunk_to_message,
)
from langchain_core.messages.ai import UsageMetadata, subtract_usage
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.pregel import Pregel
from langgraph.types import StreamWriter

from graphs.errors import InternalError, UpstreamError, UpstreamTimeout
from graphs.limits.reservations import cover_prompt, record_finished, record_unfinished
from graphs.memory.history import TokenBudget, fit_history, with_turn
from graphs.model.gateway_model import GatewayChatModel
from graphs.model.params import read_params
from graphs.model.provider_calls import chunk_of, upstream_errors
from graphs.model.reply_chunks import ReplyChunks
from graphs.model.turn import ToolRequest, Turn, running_turn
from graphs.model.unobserved import nobody_observes, split_at_model
from graphs.nodes.limit import caps_of
from graphs.route_services import RouteServices
from graphs.run_facts import facts_of
from graphs.state import ChatState


def as_chunk(output: Any) -> AIMessageChunk:
    """A chain's output chunk as a message chunk: chains end in a model (message chunks) or in
    a string parser (text)."""
    if isinstance(output, AIMessageChunk):
        return output
    if isinstance(output, str):
        return AIMessageChunk(content=output)
    if isinstance(output, AIMessage):
        return chunk_of(output)
    raise InternalError(
        f"The route's chain produced a {type(output).__name__}; it must produce a message or text."
    )


async def stream_chain(
    chain: Runnable[dict[str, Any], Any],
    chain_input: dict[str, Any],
    config: RunnableConfig,
    write: StreamWriter,
) -> AIMessageChunk:
    """The chain's whole reply; each chunk is written as it comes, unless the caller reads
    only the reply. A chain that ends in graphgate's model runs its model step alone on what
    the steps before it made, when nobody observes the run (`graphs/model/unobserved.py`)."""
    if isinstance(chain, Pregel):
        return await stream_graph(chain, chain_input, config, write)
    if (split := split_at_model(chain, GatewayChatModel)) and nobody_observes(config):
        head, chain = split
        chain_input = await head.ainvoke(chain_input, config)
    if facts_of(config).reply_only:
        return as_chunk(await chain.ainvoke(chain_input, config))
    chunks = ReplyChunks()
    async for output in chain.astream(chain_input, config):
        chunk = as_chunk(output)
        write(chunk)
        chunks.append(chunk)
    return chunks.merged() if chunks else AIMessageChunk(content="")


async def stream_graph(
    graph: Pregel[Any, Any, Any, Any],
    graph_input: dict[str, Any],
    config: RunnableConfig,
    write: StreamWriter,
) -> AIMessageChunk:
    """A compiled LangGraph graph as a route's chain: the text of its model calls streams as it
    comes (an agent's words before a tool call included), and the reply is the last AI message
    of its final `messages`, written whole if none of it streamed (a node returned it whole)."""
    final: Any = None
    streamed: set[str | None] = set()
    async for mode, data in graph.astream(graph_input, config, stream_mode=["messages", "values"]):
        if mode == "values":
            final = data
        elif isinstance(data[0], AIMessageChunk) and data[0].content:
            streamed.add(data[0].id)
            write(AIMessageChunk(content=data[0].content))
    messages = final.get("messages") if isinstance(final, dict) else None
    if not messages or not isinstance(messages[-1], AIMessage):
        raise InternalError("The route's graph ended without an AI message in its `messages`.")
    reply = messages[-1]
    if reply.id not in streamed and reply.content:
        write(AIMessageChunk(content=reply.content))
    whole = as_chunk(reply)
    # Only text streamed, no usage: the closing chunk carries all of the turn's.
    whole.usage_metadata = None
    return whole


def last_question(turn: Sequence[BaseMessage]) -> str:
    return next((m.text for m in reversed(turn) if isinstance(m, HumanMessage)), "")


def turn_of(config: RunnableConfig, max_output_tokens: int) -> Turn:
    """The turn's principal, generation parameters, `/v1` tools and end user from the run's
    facts; a run no serving layer admitted reads its parameters from its configurable (checked
    here: under `langgraph dev` nothing else checks them)."""
    facts = facts_of(config)
    return Turn(
        facts.principal,
        facts.params or read_params(config.get("configurable", {}), max_output_tokens),
        facts.tools or ToolRequest(),
        facts.end_user,
    )


async def run_chain(
    chain: Runnable[dict[str, Any], Any],
    chain_input: dict[str, Any],
    config: RunnableConfig,
    write: StreamWriter,
    deadline: float,
) -> AIMessageChunk:
    """The chain's reply within `deadline` seconds, its chunks written as they come."""
    try:
        async with asyncio.timeout(deadline):
            return await stream_chain(chain, chain_input, config, write)
    except TimeoutError as exc:
        raise UpstreamTimeout(
            f"The model did not answer within REQUEST_TIMEOUT={deadline:g} s."
        ) from exc
    except upstream_errors() as exc:
        # A chain's own upstream call (a retriever's embeddings) failed: not a bug.
        raise UpstreamError(
            f"The route's chain failed calling an upstream: {type(exc).__name__}"
        ) from exc


def make_llm(services: RouteServices, chain: Runnable[dict[str, Any], Any]) -> Any:
    settings = services.settings

    async def llm(state: ChatState, config: RunnableConfig) -> dict[str, Any]:
        write = facts_of(config).stream_to or get_stream_writer()
        with running_turn(turn_of(config, settings.max_output_tokens)) as turn:
            held = state.get("reservations", [])
            try:
                kept, turn_size = fitted_prompt(services, state)
                held = await cover_prompt(
                    services,
                    caps_of(services, config),
                    held,
                    prompt_tokens(services, kept, turn),
                    turn.params.max_tokens,
                )
                reply = await run_chain(
                    chain,
                    chain_input(services, kept, turn_size),
                    config,
                    write,
                    settings.request_timeout,
                )
            except BaseException:
                await record_unfinished(services, turn, held)
                raise
        metadata = turn.metadata()
        facts = facts_of(config)
        await record_finished(services, turn, metadata, held, facts.ending)
        if facts.admission is not None:
            facts.admission.settled(held)
        return {"reply": closed_reply(reply, metadata, write), "reservations": []}

    return llm


def chain_input(services: RouteServices, kept: list[BaseMessage], turn_size: int) -> dict[str, Any]:
    """What the route's chain reads: the fitted history, the turn, its question, and both."""
    history, turn_messages = kept[:-turn_size], kept[-turn_size:]
    if services.question_only:  # the prompt has no {turn}: earlier messages are history
        history = [*history, *turn_messages[:-1]]
    return {
        "history": history,
        "turn": turn_messages,
        "question": last_question(turn_messages),
        "messages": [*history, *turn_messages],
    }


def prompt_tokens(services: RouteServices, kept: list[BaseMessage], turn: Turn) -> int:
    """The first model call's prompt, as the budgets count it: the route's prompt, the fitted
    messages and the request's tool definitions."""
    counter = services.counter
    return (
        services.prompt_tokens
        + counter.count_messages(kept)
        + counter.count_tools(turn.tools.tools)
    )


def closed_reply(reply: AIMessageChunk, metadata: dict[str, Any], write: StreamWriter) -> AIMessage:
    """The reply as the client gets it: graphgate's metadata, and the turn's billed usage. The
    stream's last chunk carries them, with the usage the chain's output does not show (a
    chain's earlier model calls), so a streamed reply adds up to the invoked message."""
    reply.id = reply.id or f"run-{uuid.uuid4()}"
    # graphgate's keys win over a provider's of the same name (Anthropic's whole reply has a
    # `model`): merging would join the two strings.
    reply.response_metadata = {
        key: value for key, value in reply.response_metadata.items() if key not in metadata
    }
    usage = metadata["usage"]
    billed = UsageMetadata(
        input_tokens=usage["input_tokens"],
        output_tokens=usage["output_tokens"],
        total_tokens=usage["total_tokens"],
    )
    closing = AIMessageChunk(
        content="",
        id=reply.id,
        response_metadata=metadata,
        usage_metadata=subtract_usage(billed, reply.usage_metadata),
    )
    write(closing)
    message = message_chunk_to_message(reply + closing)
    assert isinstance(message, AIMessage)
    if message.usage_metadata is None:
        message.usage_metadata = billed
    else:  # the provider's details (cached input, reasoning) stay
        message.usage_metadata.update(billed)
    return message


def fitted_prompt(services: RouteServices, state: ChatState) -> tuple[list[BaseMessage], int]:
    """The session's history and the turn, fitted to `MAX_HISTORY_MESSAGES` and to the tokens
    the route's prompt leaves (`graphs/memory/history.py`), and how many of them are the turn's."""
    settings = services.settings
    messages, turn_size = with_turn(state.get("history", []), state["turn"])
    budget = TokenBudget(settings.max_input_tokens, services.counter, services.prompt_tokens)
    kept = fit_history(messages, turn_size, settings.max_history_messages + turn_size, budget)
    return kept, turn_size
