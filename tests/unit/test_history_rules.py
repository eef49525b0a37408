"""History trimming keeps a conversation a provider accepts: no tool result without its call,
no call left unanswered, the turn's question and the client's system message always kept."""

from __future__ import annotations

import pytest
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from graphs.errors import InputTooLong, InvalidInput, UnsupportedParameter
from graphs.memory.history import TokenBudget, fit_history, with_turn
from graphs.model.tokens import OFFLINE_ENCODING, TokenCounter
from graphs.nodes.guard import validate_turn


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    import tiktoken

    return TokenCounter(tiktoken.get_encoding(OFFLINE_ENCODING))


def step(n: int, calls: int = 5) -> list[BaseMessage]:
    """One agent step: a message with `calls` tool calls, then their results."""
    ids = [f"c{n}.{i}" for i in range(calls)]
    call = AIMessage("", tool_calls=[{"name": "f", "args": {}, "id": i} for i in ids])
    return [call, *[ToolMessage(f"r{i}", tool_call_id=i) for i in ids]]


def assert_valid(messages: list[BaseMessage]) -> None:
    pending: set[str | None] = set()
    first = next(m for m in messages if not isinstance(m, SystemMessage))
    assert isinstance(first, HumanMessage), messages
    for message in messages:
        if isinstance(message, ToolMessage):
            assert message.tool_call_id in pending
            pending.discard(message.tool_call_id)
            continue
        assert not pending
        pending = {c["id"] for c in message.tool_calls} if isinstance(message, AIMessage) else set()


def test_a_long_agent_turn_keeps_its_question_and_its_newest_whole_steps() -> None:
    older = [HumanMessage("q0"), AIMessage("a0")]
    turn = [HumanMessage("plan"), *[m for n in range(6) for m in step(n)], AIMessage("done")]
    kept = fit_history([*older, *turn], 1, max_messages=10)
    assert kept == [turn[0], *step(5), turn[-1]]
    assert_valid(kept)


@pytest.mark.parametrize("max_messages", range(2, 50))
def test_trimming_to_any_bound_keeps_a_valid_conversation(max_messages: int) -> None:
    session: list[BaseMessage] = [SystemMessage("be brief")]
    for n in range(4):
        session += [HumanMessage(f"q{n}"), *step(n, calls=n + 1), AIMessage(f"a{n}")]
    tool_results = step(9)[1:]
    stored = fit_history([*session, step(9)[0], *tool_results], 5, max_messages)
    assert stored[0] == SystemMessage("be brief")
    assert stored[-5:] == tool_results
    assert HumanMessage("q3") in stored
    assert_valid(stored)


def test_a_client_system_message_is_kept_first_and_a_new_one_replaces_it() -> None:
    history: list[BaseMessage] = [SystemMessage("old"), HumanMessage("q1"), AIMessage("a1")]
    messages, size = with_turn(history, [SystemMessage("new"), HumanMessage("q2")])
    assert messages == [
        SystemMessage("new"),
        HumanMessage("q1"),
        AIMessage("a1"),
        HumanMessage("q2"),
    ]
    assert size == 1
    assert fit_history(messages, 1, max_messages=2) == [SystemMessage("new"), HumanMessage("q2")]


def test_history_is_fitted_to_the_budget_whole_exchanges_from_the_oldest(
    counter: TokenCounter,
) -> None:
    history: list[BaseMessage] = [
        HumanMessage("one " * 50),
        AIMessage("reply"),
        HumanMessage("two"),
        *step(1, calls=1),
        AIMessage("done"),
    ]
    question = HumanMessage("three")
    fitted = fit_history([*history, question], 1, 40, TokenBudget(40, counter))
    assert fitted == [*history[2:], question]
    assert fit_history([*history, question], 1, 40, TokenBudget(10**6, counter))[:-1] == history
    assert fit_history([*history, question], 1, 40, TokenBudget(10, counter)) == [question]


def test_a_turn_that_cannot_fit_with_what_it_must_keep_is_input_too_long(
    counter: TokenCounter,
) -> None:
    history: list[BaseMessage] = [HumanMessage("weather? " * 30), step(1, calls=1)[0]]
    with pytest.raises(InputTooLong):
        fit_history([*history, *step(1, calls=1)[1:]], 1, 40, TokenBudget(20, counter))


def test_a_tool_call_left_unanswered_goes_when_the_conversation_moves_on() -> None:
    history: list[BaseMessage] = [HumanMessage("look"), step(1, calls=2)[0]]
    kept = fit_history([*history, HumanMessage("never mind")], 1, 40)
    assert kept == [HumanMessage("look"), HumanMessage("never mind")]
    assert fit_history(history, 1, 40) == history  # the reply's own calls wait for results


def test_a_turn_that_answers_no_call_or_only_some_is_invalid() -> None:
    with pytest.raises(InvalidInput):
        fit_history([HumanMessage("q"), ToolMessage("r", tool_call_id="nobody")], 1, 40)
    partial = step(1, calls=3)[:2]
    with pytest.raises(InvalidInput):
        fit_history([HumanMessage("q"), *partial], 1, 40)


def test_results_must_answer_each_call_once_malformed_calls_included() -> None:
    call = AIMessage("", tool_calls=[{"name": "f", "args": {}, "id": i} for i in ("a", "b")])
    twice_a = [ToolMessage("r", tool_call_id="a"), ToolMessage("r", tool_call_id="a")]
    with pytest.raises(InvalidInput):
        fit_history([HumanMessage("q"), call, *twice_a], 2, 40)
    cut = AIMessage(
        "",
        invalid_tool_calls=[
            {"name": "f", "args": "{", "id": "c", "error": "cut", "type": "invalid_tool_call"}
        ],
    )
    answer = ToolMessage("bad arguments", tool_call_id="c")
    assert fit_history([HumanMessage("q"), cut, answer], 1, 40) == [HumanMessage("q"), cut, answer]


def test_a_turn_with_an_unanswered_call_is_refused_by_the_guard(counter: TokenCounter) -> None:
    call = step(1, calls=2)
    for turn in (
        [HumanMessage("q"), *call[:2]],
        [HumanMessage("q"), ToolMessage("r", tool_call_id="x")],
    ):
        with pytest.raises(InvalidInput):
            validate_turn("", turn, counter, 10_000)
    session_call = [ToolMessage("r", tool_call_id="from-the-session")]
    assert validate_turn("", session_call, counter, 10_000).messages == session_call
    assert validate_turn("", [HumanMessage("q"), *call], counter, 10_000).messages == [
        HumanMessage("q"),
        *call,
    ]


def test_media_parts_are_refused_and_a_replys_own_parts_are_not(counter: TokenCounter) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}
    with pytest.raises(UnsupportedParameter):
        validate_turn(
            "", [HumanMessage(content=[{"type": "text", "text": "hi"}, image])], counter, 10_000
        )
    thinking = AIMessage(
        content=[{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "4"}]
    )
    turn = [HumanMessage("2+2?"), thinking, HumanMessage("and 3+3?")]
    assert validate_turn("", turn, counter, 10_000).messages == turn
