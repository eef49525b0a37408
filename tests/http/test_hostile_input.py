"""Hostile input gets a 4xx with the error body on every chat route, never a 5xx: each body of
issue #8 (and each cause the schema fuzzer found) has its own case, sent as raw bytes to a real
server, on invoke, the three streams, batch and the OpenAI-compatible route."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from langserve.lzstring import LZString

from tests.live_servers import Graphgate, StartGraphgate

LANGSERVE_ENDPOINTS = ["invoke", "stream", "stream_log", "stream_events", "batch"]
# The ten LangServe POST routes: each endpoint, plain and under a config hash (`/c/{hash}/`,
# here the hash of `{}`).
LANGSERVE_ROUTES = [
    f"/chat/{prefix}{endpoint}" for prefix in ("", "c/N4XyA/") for endpoint in LANGSERVE_ENDPOINTS
]
ROUTES = [*LANGSERVE_ROUTES, "/v1/chat/completions"]
JSON = {"Content-Type": "application/json"}


def envelope(route: str, question: str = '"hi"', side: str = "0", messages: str = "[]") -> bytes:
    """A request body for `route` as raw JSON text: `question` is the turn's text, `side` a
    value in a field the route ignores, `messages` client-held messages (LangServe routes).
    Escaped surrogates (`\\udcff`) become those raw bytes: the way to write invalid UTF-8."""
    if route.startswith("/v1/"):
        return (
            f'{{"model": "graphgate", "stream_options": {{"include_usage": false, "n": {side}}}, '
            f'"messages": [{{"role": "user", "content": {question}}}]}}'
        ).encode(errors="surrogateescape")
    turn = f'{{"question": {question}, "messages": {messages}}}'
    config = f'{{"metadata": {{"n": {side}}}}}'
    if route.endswith("/batch"):
        return f'{{"inputs": [{turn}], "config": {config}}}'.encode(errors="surrogateescape")
    return f'{{"input": {turn}, "config": {config}}}'.encode(errors="surrogateescape")


@dataclass
class Case:
    status: int
    code: str
    body: bytes | None = None  # the same bytes on every route
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))
    question: str = '"hi"'
    side: str = "0"
    messages: str = "[]"

    def request_body(self, route: str) -> bytes:
        if self.body is not None:
            return self.body
        return envelope(route, self.question, self.side, self.messages)


DEEP = "[" * 1000 + "]" * 1000
MESSAGE = '{"type": "human", "content": "hi"}'
CASES = {
    "malformed json": Case(400, "invalid_input", body=b"{not json"),
    "empty body": Case(400, "invalid_input", body=b""),
    "whitespace body": Case(400, "invalid_input", body=b" \n "),
    "text/plain": Case(415, "unsupported_media_type", headers={"Content-Type": "text/plain"}),
    "form content type": Case(
        415, "unsupported_media_type", headers={"Content-Type": "application/x-www-form-urlencoded"}
    ),
    "no content type": Case(415, "unsupported_media_type", headers={}),
    "invalid utf-8": Case(400, "invalid_input", question='"\udcff\udcfe"'),
    "nested 1,000 deep (10 KB)": Case(400, "invalid_input", side=DEEP),
    "nested 100,000 deep": Case(400, "invalid_input", side="[" * 100_000 + "]" * 100_000),
    "integer beyond 64 bits": Case(400, "invalid_input", side=str(2**70)),
    "integer of 5,000 digits": Case(400, "invalid_input", side="9" * 5000),
    "NaN": Case(400, "invalid_input", side="NaN"),
    "Infinity": Case(400, "invalid_input", side="-Infinity"),
    "float overflow": Case(400, "invalid_input", side="1e400"),
    "lone surrogate": Case(400, "invalid_input", question='"\\ud800 hi"'),
    "raw NUL in a string": Case(400, "invalid_input", question='"a\x00b"'),
    "question of the wrong type": Case(422, "validation_error", question="5"),
    "question over MAX_INPUT_TOKENS": Case(
        400, "input_too_long", question=json.dumps("ab " * 3000)
    ),
    "body a JSON array": Case(422, "validation_error", body=b"[1, 2]"),
    "body a JSON string": Case(422, "validation_error", body=b'"hello"'),
}
# LangServe envelopes: (status, code, the input's JSON text, the config's JSON text).
LANGSERVE_CASES = {
    "input not an object": (422, "validation_error", "5", "{}"),
    "config null": (422, "validation_error", '{"question": "hi"}', "null"),
    "configurable a list": (422, "validation_error", '{"question": "hi"}', '{"configurable": []}'),
    "session id too long": (
        400,
        "invalid_input",
        '{"question": "hi"}',
        json.dumps({"configurable": {"session_id": "s" * 200}}),
    ),
    "session id with NUL": (
        400,
        "invalid_input",
        '{"question": "hi"}',
        '{"configurable": {"session_id": "a\\u0000"}}',
    ),
    "session id a number": (
        400,
        "invalid_input",
        '{"question": "hi"}',
        '{"configurable": {"session_id": 7}}',
    ),
    "messages [0]": (422, "validation_error", '{"messages": [0]}', "{}"),
    "message without type": (422, "validation_error", '{"messages": [{"content": "hi"}]}', "{}"),
    "message type 0": (
        422,
        "validation_error",
        '{"messages": [{"type": 0, "content": "hi"}]}',
        "{}",
    ),
    "a LangChain-serialized object in a message": (
        422,
        "validation_error",
        '{"messages": [{"type": "human", "content": "x", "additional_kwargs": {"lc": 1, '
        '"type": "constructor", "id": ["langchain", "schema", "messages", "HumanMessage"], '
        '"kwargs": {"content": "evil"}}}]}',
        '{"configurable": {"session_id": "lc"}}',
    ),
    "tool_calls [0]": (
        422,
        "validation_error",
        f'{{"messages": [{{"type": "ai", "content": "x", "tool_calls": [0]}}, {MESSAGE}]}}',
        "{}",
    ),
}


@pytest.fixture(scope="module")
def hostile_server(graphgate_factory: StartGraphgate) -> Graphgate:
    return graphgate_factory("redis")


def post(server: Graphgate, route: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{server.url}{route}", content=body, headers=headers, timeout=30)


def assert_refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert response.headers["X-Trace-Id"] in error.get("trace_id", error["message"])


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("name", list(CASES))
def test_hostile_body_is_refused_on_every_route(
    hostile_server: Graphgate, route: str, name: str
) -> None:
    case = CASES[name]
    response = post(hostile_server, route, case.request_body(route), case.headers)
    assert_refused(response, case.status, case.code)


@pytest.mark.parametrize("route", LANGSERVE_ROUTES)
@pytest.mark.parametrize("name", list(LANGSERVE_CASES))
def test_hostile_langserve_body_is_refused(
    hostile_server: Graphgate, route: str, name: str
) -> None:
    status, code, input_text, config_text = LANGSERVE_CASES[name]
    if route.endswith("/batch"):
        body = f'{{"inputs": [{input_text}], "config": {config_text}}}'
    else:
        body = f'{{"input": {input_text}, "config": {config_text}}}'
    assert_refused(post(hostile_server, route, body.encode(), JSON), status, code)


def test_batch_inputs_that_are_not_a_list_is_422(hostile_server: Graphgate) -> None:
    for inputs in (b"5", b'"x"', b'{"question": "hi"}', b"null"):
        response = post(hostile_server, "/chat/batch", b'{"inputs": ' + inputs + b"}", JSON)
        assert_refused(response, 422, "validation_error")


def compressed(text: str) -> str:
    """LangServe's config-hash encoding (LZ-string, as its playground writes it)."""
    return str(LZString.compressToEncodedURIComponent(text))  # type: ignore[no-untyped-call]


def config_hash(config: dict[str, Any]) -> str:
    return compressed(json.dumps(config))


def test_a_session_named_in_the_config_hash_is_admitted_like_the_bodys(
    hostile_server: Graphgate, user: str
) -> None:
    """The playground's routes carry the config in the URL: a batch of turns of one session
    is refused there too, and a bad session id before anything is counted."""
    headers = {**JSON, "X-User-Id": user}
    same = config_hash({"configurable": {"session_id": "one"}})
    batch = b'{"inputs": [{"question": "a"}, {"question": "b"}]}'
    response = post(hostile_server, f"/chat/c/{same}/batch", batch, headers)
    assert_refused(response, 400, "invalid_input")
    bad = config_hash({"configurable": {"session_id": "a/b"}})
    response = post(hostile_server, f"/chat/c/{bad}/invoke", envelope("/chat/invoke"), headers)
    assert_refused(response, 400, "invalid_input")
    assert "X-RateLimit-Remaining" not in response.headers


def test_an_over_long_config_hash_is_400_on_every_method(hostile_server: Graphgate) -> None:
    # 5 million characters of config compress into about 6 KB of URL.
    bomb = compressed("a" * 5_000_000)
    assert len(bomb) > 1024
    response = post(hostile_server, f"/chat/c/{bomb}/invoke", envelope("/chat/invoke"), JSON)
    assert_refused(response, 400, "invalid_input")
    schema = httpx.get(f"{hostile_server.url}/chat/c/{bomb}/input_schema")
    assert_refused(schema, 400, "invalid_input")


def test_over_long_headers_are_431(hostile_server: Graphgate) -> None:
    for name in ("X-Session-Id", "Authorization", "X-Anything"):
        headers = {**JSON, name: "a" * 20_000}
        response = post(hostile_server, "/chat/invoke", envelope("/chat/invoke"), headers)
        assert_refused(response, 431, "headers_too_large")


def test_an_escaped_nul_in_the_question_is_ordinary_text(hostile_server: Graphgate) -> None:
    body = envelope("/chat/invoke", question='"a\\u0000b"')
    response = post(hostile_server, "/chat/invoke", body, JSON)
    assert response.status_code == 200
    assert response.json()["output"]["content"] == "Echo: a\x00b"


def test_a_huge_integer_in_a_sessions_message_loses_no_turn(
    hostile_server: Graphgate, user: str
) -> None:
    """The fuzzer's case: the model answered, then the checkpoint write failed on a 2**70 in the
    message and the turn was lost. Now it is refused up front and the session stays whole."""
    config = {"configurable": {"session_id": "big"}}
    headers = {**JSON, "X-User-Id": user}
    first = {"input": {"question": "first"}, "config": config}
    assert post(hostile_server, "/chat/invoke", json.dumps(first).encode(), headers).is_success
    message = f'[{{"type": "human", "content": "hi", "additional_kwargs": {{"n": {2**70}}}}}]'
    body = f'{{"input": {{"messages": {message}}}, "config": {json.dumps(config)}}}'.encode()
    assert_refused(post(hostile_server, "/chat/invoke", body, headers), 400, "invalid_input")
    fits = body.replace(str(2**70).encode(), str(2**62).encode())
    assert post(hostile_server, "/chat/invoke", fits, headers).status_code == 200
    history = httpx.get(f"{hostile_server.url}/chat/sessions/big", headers={"X-User-Id": user})
    assert [m["content"] for m in history.json()["messages"]] == [
        "first",
        "Echo: first",
        "hi",
        "Echo: hi",
    ]
