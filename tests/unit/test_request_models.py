"""Property tests (Hypothesis) of the request models and the body parser: whatever JSON or bytes
a client sends, the outcome is a parsed value, a validated model, or a 4xx error, never another
exception (which would be a 500)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from api.chat_schema import ChatRequest
from api.langserve_body import BatchBody, InvokeBody
from api.openai_request import (
    CompletionRequest,
    conversation,
    generation_params,
    refuse_unsupported,
    tool_request,
)
from graphs.errors import GraphgateError
from middleware.json_body import parse_json_body

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
SCALARS = st.none() | st.booleans() | INT64 | st.floats(allow_nan=False, allow_infinity=False)
JSON_VALUES = st.recursive(
    SCALARS | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
MESSAGE_TYPES = st.sampled_from(["human", "ai", "system", "tool", "function", "chat", "x", ""])
MESSAGES = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "type": MESSAGE_TYPES | JSON_VALUES,
            "role": st.sampled_from(["user", "assistant", "system", "tool"]) | JSON_VALUES,
            "content": st.text(max_size=10) | JSON_VALUES,
            "tool_calls": st.lists(JSON_VALUES, max_size=2),
            "tool_call_id": JSON_VALUES,
            "additional_kwargs": JSON_VALUES,
        },
    )
    | JSON_VALUES,
    max_size=3,
)
TURNS = st.fixed_dictionaries({}, optional={"question": JSON_VALUES, "messages": MESSAGES})
MODELS: list[Any] = [ChatRequest, InvokeBody, BatchBody, CompletionRequest]


def validates_or_refuses(model: Any, value: Any) -> None:
    with contextlib.suppress(ValidationError):
        model.model_validate(value)


@settings(max_examples=300, deadline=None)
@given(value=JSON_VALUES)
def test_any_json_value_validates_or_is_a_validation_error(value: Any) -> None:
    for model in MODELS:
        validates_or_refuses(model, value)


@settings(max_examples=300, deadline=None)
@given(turn=TURNS, config=JSON_VALUES)
def test_any_turn_in_any_envelope_validates_or_is_a_validation_error(
    turn: dict[str, Any], config: Any
) -> None:
    validates_or_refuses(ChatRequest, turn)
    validates_or_refuses(InvokeBody, {"input": turn, "config": config})
    validates_or_refuses(BatchBody, {"inputs": [turn, turn], "config": config})
    validates_or_refuses(CompletionRequest, {"messages": turn.get("messages", [])})


OPENAI_ROLES = st.sampled_from(["user", "assistant", "system", "developer", "tool", "function"])
OPENAI_MESSAGES = st.lists(
    st.fixed_dictionaries(
        {"role": OPENAI_ROLES | JSON_VALUES},
        optional={
            "content": st.text(max_size=10) | JSON_VALUES,
            "tool_calls": st.lists(JSON_VALUES, max_size=2),
            "tool_call_id": JSON_VALUES,
            "name": JSON_VALUES,
        },
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=300, deadline=None)
@given(messages=OPENAI_MESSAGES, extra=st.dictionaries(st.text(max_size=12), JSON_VALUES))
def test_any_openai_request_is_read_or_refused_with_a_client_error(
    messages: list[Any], extra: dict[str, Any]
) -> None:
    """Past the envelope, the messages, parameters and tools are read or refused (4xx):
    never an exception of another kind (a 500)."""
    try:
        body = CompletionRequest.model_validate({**extra, "messages": messages})
    except ValidationError:
        return
    for read in (
        refuse_unsupported,
        conversation,
        tool_request,
        lambda b: generation_params(b, 4096),
    ):
        status = 200
        try:
            read(body)
        except GraphgateError as exc:
            status = exc.status
        assert status == 200 or 400 <= status < 500


@settings(max_examples=300, deadline=None)
@given(value=JSON_VALUES)
def test_the_parser_returns_what_json_holds_within_the_limits(value: Any) -> None:
    assert parse_json_body(json.dumps(value).encode(), 64) == value


@settings(max_examples=500, deadline=None)
@given(body=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_parse_or_are_a_client_error(body: bytes) -> None:
    status = 200
    try:
        parse_json_body(body, 8)
    except GraphgateError as exc:
        status = exc.status
    assert status == 200 or 400 <= status < 500
