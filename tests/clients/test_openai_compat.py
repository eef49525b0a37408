"""The official `openai` SDK against graphgate's OpenAI-compatible endpoint: plain and streamed
completions, usage equal to the upstream's, memory by session, and errors the SDK recognises."""

from __future__ import annotations

import openai
import pytest

from tests.live_servers import Graphgate, StartGraphgate
from tests.upstream import Upstream

LIMIT = 3


def sdk(server: Graphgate, user: str, **headers: str) -> openai.OpenAI:
    # No SDK retries: a test must see the first answer, not wait out a Retry-After.
    return openai.OpenAI(
        base_url=f"{server.url}/v1",
        api_key="unused",
        max_retries=0,
        default_headers={"X-User-Id": user, **headers},
    )


def test_plain_completion_with_the_upstream_usage(
    server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    completion = sdk(server, user).chat.completions.create(
        model="graphgate", messages=[{"role": "user", "content": f"hello {marker}"}]
    )
    assert completion.choices[0].message.content == f"Echo: hello {marker}"
    (upstream_usage,) = upstream.stats(marker)["usage"]
    assert completion.usage is not None
    assert (
        completion.usage.model_dump(include={"prompt_tokens", "completion_tokens", "total_tokens"})
        == upstream_usage
    )


def test_streamed_completion_token_by_token_with_usage(
    server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, tokens=20)
    stream = sdk(server, user).chat.completions.create(
        model="graphgate",
        messages=[{"role": "user", "content": marker}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) == 20
    assert "".join(texts) == " ".join(f"w{i}" for i in range(1, 21))
    (upstream_usage,) = upstream.stats(marker)["usage"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == upstream_usage["total_tokens"]


def test_a_session_header_keeps_memory(
    server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    client = sdk(server, user, **{"X-Session-Id": "s1"})
    for question in (f"one {marker}", f"two {marker}"):
        client.chat.completions.create(
            model="graphgate", messages=[{"role": "user", "content": question}]
        )
    prompt = [m["content"] for m in upstream.prompts(marker)[-1]]
    assert prompt == [f"one {marker}", f"Echo: one {marker}", f"two {marker}"]


def test_too_long_input_is_a_400_in_openai_format(server: Graphgate, user: str) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        sdk(server, user).chat.completions.create(
            model="graphgate", messages=[{"role": "user", "content": "word " * 2100}]
        )
    assert refused.value.status_code == 400
    assert refused.value.code == "input_too_long"
    assert refused.value.type == "invalid_request_error"


def test_the_rate_limit_is_a_429_the_sdk_recognises(
    graphgate_factory: StartGraphgate, mode: str, user: str
) -> None:
    client = sdk(graphgate_factory(mode, RATE_LIMIT_MAX=str(LIMIT)), user)
    for turn in range(LIMIT):
        client.chat.completions.create(
            model="graphgate", messages=[{"role": "user", "content": f"q{turn}"}]
        )
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(
            model="graphgate", messages=[{"role": "user", "content": "one too many"}]
        )
    assert refused.value.code == "rate_limited"
    assert int(refused.value.response.headers["Retry-After"]) >= 1
