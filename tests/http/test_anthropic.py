"""Anthropic as primary and as fallback, against the double's Messages API: answers (invoke
and stream) with the provider's usage and its cost, the fallback from a failing OpenAI primary,
and the SDK's retries counted."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from langserve import RemoteRunnable

from tests.conftest import ISSUED_SECRETS, PRIMARY_MODEL
from tests.live_servers import Graphgate, StartGraphgate
from tests.upstream import Upstream

CLAUDE = "claude-3-5-haiku"
ANTHROPIC_KEY = "sk-ant-test-0123456789abcdef"
# graphs/model/pricing.toml: USD per million tokens.
CLAUDE_PRICE = {"input": 0.80, "output": 4.00}
ISSUED_SECRETS.add(ANTHROPIC_KEY)


def anthropic_settings(upstream: Upstream, **settings: str) -> dict[str, str]:
    return {"ANTHROPIC_API_KEY": ANTHROPIC_KEY, "ANTHROPIC_BASE_URL": upstream.base_url, **settings}


@pytest.fixture
def claude_primary(graphgate_factory: StartGraphgate, mode: str, upstream: Upstream) -> Graphgate:
    return graphgate_factory(
        mode, **anthropic_settings(upstream, LLM_MODEL=f"anthropic:{CLAUDE}", LLM_FALLBACK_MODEL="")
    )


def chat(server: Graphgate, user: str) -> RemoteRunnable[Any, Any]:
    return RemoteRunnable(server.chat_url, headers={"X-User-Id": user}, timeout=30)


def expected_cost(usage: dict[str, int]) -> float:
    return (
        usage["input_tokens"] * CLAUDE_PRICE["input"]
        + usage["output_tokens"] * CLAUDE_PRICE["output"]
    ) / 1_000_000


def test_an_anthropic_primary_answers_with_usage_and_cost(
    claude_primary: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    reply = chat(claude_primary, user).invoke({"question": f"hello claude {marker}"})
    assert reply.content == f"Echo: hello claude {marker}"
    (upstream_usage,) = upstream.stats(marker)["usage"]
    metadata = reply.response_metadata
    assert metadata["model"] == f"anthropic:{CLAUDE}"
    assert metadata["usage"]["input_tokens"] == upstream_usage["input_tokens"]
    assert metadata["usage"]["output_tokens"] == upstream_usage["output_tokens"]
    assert metadata["cost_usd"] == pytest.approx(expected_cost(upstream_usage))
    (sent,) = upstream.stats(marker)["bodies"]
    assert sent["model"] == CLAUDE
    assert sent["system"]  # the chat prompt's system message went as Anthropic's `system`


def test_an_anthropic_primary_streams_token_by_token(
    claude_primary: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, tokens=20)
    chunks = list(chat(claude_primary, user).stream({"question": marker}))
    texts = [chunk.content for chunk in chunks if chunk.content]
    assert len(texts) >= 10
    assert "".join(texts) == " ".join(f"w{i}" for i in range(1, 21))
    closing = chunks[-1].response_metadata
    assert closing["usage"]["output_tokens"] == 20
    assert closing["cost_usd"] == pytest.approx(expected_cost(closing["usage"]))


def test_a_failing_openai_primary_falls_back_to_anthropic(
    graphgate_factory: StartGraphgate, mode: str, upstream: Upstream, user: str, marker: str
) -> None:
    server = graphgate_factory(
        mode, **anthropic_settings(upstream, LLM_FALLBACK_MODEL=f"anthropic:{CLAUDE}")
    )
    upstream.behave(marker, model=PRIMARY_MODEL, statuses=[500] * 10)
    reply = chat(server, user).invoke({"question": f"fail over {marker}"})
    assert reply.content == f"Echo: fail over {marker}"
    assert reply.response_metadata["fallback_used"] is True
    assert reply.response_metadata["model"] == f"anthropic:{CLAUDE}"
    models = [body["model"] for body in upstream.stats(marker)["bodies"]]
    assert models == [PRIMARY_MODEL] * 3 + [CLAUDE]  # the primary's 3 attempts, then Claude


@pytest.mark.parametrize("status", [429, 529])
def test_an_anthropic_retry_is_counted(
    claude_primary: Graphgate, upstream: Upstream, user: str, marker: str, status: int
) -> None:
    upstream.behave(marker, statuses=[status], retry_after=0)
    reply = chat(claude_primary, user).invoke({"question": f"retry {marker}"})
    assert reply.content == f"Echo: retry {marker}"
    assert reply.response_metadata["retries"] == 1
    assert upstream.stats(marker)["requests"] == 2


def test_a_clients_system_message_joins_the_prompts_for_anthropic(
    claude_primary: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    """Anthropic takes one system prompt: an OpenAI-style conversation's own system message is
    joined to the route prompt's, not refused."""
    response = httpx.post(
        f"{claude_primary.url}/v1/chat/completions",
        json={
            "model": "graphgate",
            "messages": [
                {"role": "system", "content": f"Answer in French {marker}."},
                {"role": "user", "content": f"hello {marker}"},
            ],
        },
        headers={"X-User-Id": user},
    )
    assert response.status_code == 200, response.text
    (sent,) = upstream.stats(marker)["bodies"]
    system = sent["system"] if isinstance(sent["system"], str) else sent["system"][0]["text"]
    assert system.startswith("You are a helpful assistant.")
    assert system.endswith(f"Answer in French {marker}.")
    assert [m["role"] for m in sent["messages"]] == ["user"]
