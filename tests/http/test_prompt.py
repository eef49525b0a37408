"""The chat chain is `prompt | model`: the upstream sees the system message first, a prompt file
shapes the conversation, the guard and usage count the whole prompt, and LangServe clients set
generation parameters per request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from langserve import RemoteRunnable

from tests.live_servers import Graphgate, StartGraphgate
from tests.upstream import Upstream

SYSTEM = "You are Marvin, a tired robot. Reply in {braces} if you must."
PROMPT_FILE = """
messages = [
  ["system", "Support bot. The conversation so far follows."],
  ["placeholder", "{history}"],
  ["human", "Customer asks: {question}"],
]
"""


def chat(server: Graphgate, user: str) -> RemoteRunnable[Any, Any]:
    return RemoteRunnable(server.chat_url, headers={"X-User-Id": user}, timeout=30)


def test_the_upstream_request_starts_with_the_configured_system_message(
    graphgate_factory: StartGraphgate, mode: str, upstream: Upstream, user: str, marker: str
) -> None:
    server = graphgate_factory(mode, SYSTEM_PROMPT=SYSTEM)
    chat(server, user).invoke({"question": f"hello {marker}"})
    (sent,) = upstream.sent_messages(marker)
    assert sent == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"hello {marker}"},
    ]


def test_a_prompt_file_with_a_history_placeholder_shapes_each_turn(
    graphgate_factory: StartGraphgate,
    upstream: Upstream,
    user: str,
    marker: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    path = tmp_path_factory.mktemp("prompt") / "support.toml"
    path.write_text(PROMPT_FILE)
    server = graphgate_factory("redis", PROMPT_FILE=str(path))
    session = chat(server, user).with_config({"configurable": {"session_id": f"p-{marker}"}})
    session.invoke({"question": f"one {marker}"})
    session.invoke({"question": f"two {marker}"})
    assert upstream.sent_messages(f"two {marker}")[-1] == [
        {"role": "system", "content": "Support bot. The conversation so far follows."},
        {"role": "user", "content": f"one {marker}"},
        {"role": "assistant", "content": f"Echo: Customer asks: one {marker}"},
        {"role": "user", "content": f"Customer asks: two {marker}"},
    ]


def test_the_prompts_tokens_are_in_usage(
    graphgate_factory: StartGraphgate, upstream: Upstream, user: str, marker: str
) -> None:
    server = graphgate_factory("embedded", SYSTEM_PROMPT=SYSTEM)
    reply = chat(server, user).invoke({"question": f"count me {marker}"})
    (upstream_usage,) = upstream.stats(marker)["usage"]
    # The double counts each message's words plus 3: the system message's are in there.
    assert upstream_usage["prompt_tokens"] == len(SYSTEM.split()) + 3 + 3 + 3
    assert reply.response_metadata["usage"]["input_tokens"] == upstream_usage["prompt_tokens"]
    assert reply.usage_metadata["input_tokens"] == upstream_usage["prompt_tokens"]


def test_the_guard_counts_the_system_prompt(
    graphgate_factory: StartGraphgate, user: str, marker: str
) -> None:
    server = graphgate_factory(
        "embedded", SYSTEM_PROMPT="word " * 80, MAX_INPUT_TOKENS="100", RATE_LIMIT_MAX="1000"
    )
    response = httpx.post(
        f"{server.url}/chat/invoke",
        json={"input": {"question": f"{marker} " + "more " * 20}},
        headers={"X-User-Id": user},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "input_too_long"


def test_generation_parameters_are_configurable_per_request(
    server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    configured = chat(server, user).with_config(
        {"configurable": {"temperature": 0.2, "max_tokens": 9, "stop": ["END"], "top_p": 0.5}}
    )
    configured.invoke({"question": f"tune {marker}"})
    body = upstream.stats(marker)["bodies"][-1]
    assert (body["temperature"], body["stop"], body["top_p"]) == (0.2, ["END"], 0.5)
    assert (body.get("max_completion_tokens") or body.get("max_tokens")) == 9


def test_a_parameter_beyond_the_server_maximum_is_a_400_before_any_stream(
    server: Graphgate, user: str
) -> None:
    body = {"input": {"question": "hi"}, "config": {"configurable": {"max_tokens": 10**7}}}
    for endpoint in ("invoke", "stream"):
        response = httpx.post(
            f"{server.url}/chat/{endpoint}", json=body, headers={"X-User-Id": user}
        )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_input"
        assert "MAX_OUTPUT_TOKENS" in response.json()["error"]["message"]


def test_the_demo_model_remembers_the_session(
    graphgate_factory: StartGraphgate, user: str, marker: str
) -> None:
    server = graphgate_factory("embedded", OPENAI_BASE_URL="", DEMO_TOKENS_PER_SECOND="0")
    session = chat(server, user).with_config({"configurable": {"session_id": f"d-{marker}"}})
    session.invoke({"question": "I am Ada."})
    second = session.invoke({"question": "Who am I?"})
    assert second.content == (
        '(demo model) Turn 2. Earlier you said: "I am Ada.". You said: Who am I?'
    )
