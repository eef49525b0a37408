"""guard: the turn must be non-empty, text only and, with the route's prompt, within
`MAX_INPUT_TOKENS`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

from langchain_core.messages import AnyMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig

from graphs.errors import InvalidInput, UnsupportedParameter, refuse_too_long
from graphs.memory.history import UNANSWERED_CALLS, units_of
from graphs.model.tokens import TokenCounter
from graphs.route_services import RouteServices
from graphs.run_facts import facts_of
from graphs.state import ChatState


class GuardedTurn(NamedTuple):
    messages: list[BaseMessage]  # client-held ones, then the question
    tokens: int  # the messages' own, without the route's prompt


def validate_turn(
    question: str,
    messages: Sequence[BaseMessage],
    counter: TokenCounter,
    max_tokens: int,
    prompt_tokens: int = 0,
    question_only: bool = False,
    counted: int | None = None,
) -> GuardedTurn:
    """The turn, or the reason to refuse it. `prompt_tokens` counts what the route's prompt
    adds (its system message): the turn and the prompt must fit in `max_tokens`; the history is
    trimmed to the room left. `counted`: the turn's tokens as admission counted them (it
    checked the size already)."""
    turn = list(messages)
    if question.strip():
        turn.append(HumanMessage(content=question))
    # A tool's result may be empty: it is still the answer to a call.
    if not any(m.text.strip() or isinstance(m, ToolMessage) for m in turn):
        raise InvalidInput("The turn is empty: send a non-empty `question` or `messages`.")
    refuse_non_text(turn)
    refuse_unanswered_calls(turn)
    if not isinstance(turn[-1], HumanMessage | ToolMessage):
        raise InvalidInput("The last message of a turn must come from the human (or a tool).")
    if question_only and not isinstance(turn[-1], HumanMessage):
        raise InvalidInput("This route's prompt takes a question: end the turn with one.")
    if counted is not None:
        return GuardedTurn(turn, counted)
    tokens = counter.count_messages(turn)
    refuse_too_long(prompt_tokens + tokens, max_tokens)
    return GuardedTurn(turn, tokens)


# Content the guard can neither count nor the cache tell apart: images, audio, video, files.
MEDIA_PARTS = frozenset(
    {"image", "image_url", "input_image", "audio", "input_audio", "video", "file", "input_file"}
)


def refuse_non_text(messages: Sequence[BaseMessage]) -> None:
    """Media parts are refused by name, the same way on every API, rather than passed on
    unguarded. Other parts (text, an assistant's refusal, tool use or reasoning that an
    Anthropic reply holds and a client sends back) are what a model returned."""
    for message in messages:
        parts = message.content if isinstance(message.content, list) else []
        for part in parts:
            kind = part.get("type") if isinstance(part, dict) else "text"
            if kind in MEDIA_PARTS:
                raise UnsupportedParameter(
                    "messages", f"only text content is served; a `{kind}` part is not"
                )


def refuse_unanswered_calls(turn: Sequence[BaseMessage]) -> None:
    """Within the turn, each tool call is answered once by the results right after it, before
    anything else is said (the turn's first results may answer the session's last call: the
    run checks those against the history)."""
    units = units_of(turn)
    leading = next((i for i, unit in enumerate(units) if unit.valid), len(units))
    if not all(isinstance(turn[unit.start], ToolMessage) for unit in units[:leading]):
        leading = 0
    if any(not unit.valid for unit in units[leading:]):
        raise InvalidInput(UNANSWERED_CALLS)


def guard_turn(
    services: RouteServices,
    question: str,
    messages: Sequence[BaseMessage],
    counted: int | None = None,
) -> GuardedTurn:
    """`validate_turn` with the route's limit, prompt and prompt shape: the guard node and
    admission guard a turn the same way."""
    return validate_turn(
        question,
        messages,
        services.counter,
        services.settings.max_input_tokens,
        services.prompt_tokens,
        services.question_only,
        counted,
    )


def make_guard(services: RouteServices) -> Any:
    # A coroutine although it never waits: LangGraph runs a plain function node of an async
    # run in an executor thread, a hop that cost more than the guard itself.
    async def guard(state: ChatState, config: RunnableConfig) -> dict[str, Any]:
        turn, _ = guard_turn(
            services,
            state.get("question", ""),
            state.get("messages", []),
            facts_of(config).turn_tokens,
        )
        for message in turn:
            message.id = message.id or str(uuid.uuid4())
        accepted: list[AnyMessage] = turn  # type: ignore[assignment]
        return {"turn": accepted, "question": "", "messages": []}

    return guard
