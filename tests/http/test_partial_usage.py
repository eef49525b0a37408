"""What was spent is counted: a turn cut short is not stored, but the tokens the provider
produced for it are in `/usage`, the token metrics and the daily budget, marked partial."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from graphs.model.tokens import TokenCounter, load_encoding
from tests.live_servers import Graphgate, StartGraphgate
from tests.upstream import Upstream

MODEL = "gpt-budget"  # 0 USD per million input tokens, 100 per million output tokens
TWENTY_TOKENS = {"configurable": {"max_tokens": 20}}


@pytest.fixture
def budget_server(graphgate_factory: StartGraphgate, tmp_path: Any) -> Graphgate:
    prices = tmp_path / "prices.toml"
    prices.write_text(f'[models."{MODEL}"]\ninput = 0\noutput = 100\n')
    return graphgate_factory(
        "redis",
        fresh=True,
        PRICING_FILE=str(prices),
        LLM_MODEL=MODEL,
        LLM_FALLBACK_MODEL="",
        # A turn reserves max_tokens 20 at 100 USD per million: 0.002 USD.
        DAILY_BUDGET_USD="0.0025",
        # Replies cut short mid-stream are this module's subject: invoke streams them too.
        STREAM_UPSTREAM_ON_INVOKE="true",
    )


def words(count: int) -> str:
    return " ".join(f"w{i}" for i in range(1, count + 1))


def usage_today(server: Graphgate, user: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/usage?days=1", headers={"X-User-Id": user})
    response.raise_for_status()
    days = response.json()["days"]
    return days[0]["total"] if days else {}


def partial_usage(server: Graphgate, user: str, within: float = 10) -> dict[str, Any]:
    """Today's usage once it shows the partial turn (recorded as the server notices the drop)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        usage = usage_today(server, user)
        if usage.get("partial_requests"):
            return usage
        time.sleep(0.05)
    raise AssertionError(f"no partial turn in {usage_today(server, user)}")


def metric(server: Graphgate, name: str, **labels: str) -> float:
    selector = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name}{{{selector}}} in /metrics")


def test_a_stream_dropped_after_10_of_20_tokens_is_counted_partial_and_charged(
    budget_server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, tokens=20, tokens_per_second=20)
    seen: list[str] = []
    body = {"input": {"question": f"twenty words please {marker}"}, "config": TWENTY_TOKENS}
    with (
        httpx.Client(base_url=budget_server.url, headers={"X-User-Id": user}) as client,
        connect_sse(client, "POST", "/chat/stream", json=body) as events,
    ):
        for event in events.iter_sse():
            if event.event == "data" and event.json()["content"]:
                seen.append(event.json()["content"].strip())
            if len(seen) == 10:
                break  # the client goes: the connection closes with the stream half-read
    assert seen == words(10).split()

    usage = partial_usage(budget_server, user)
    counter = TokenCounter(load_encoding(MODEL, None))
    assert counter.count_text(words(10)) <= usage["output_tokens"] < counter.count_text(words(20))
    assert usage["input_tokens"] > 0  # the prompt was paid for too, counted by tiktoken
    assert usage["partial_requests"] == 1
    assert usage["partial_tokens"] == usage["total_tokens"]
    assert usage["cost_usd"] == pytest.approx(usage["output_tokens"] * 100 / 1_000_000)
    stats = upstream.stats(marker)
    assert stats["completed"] == 0  # the upstream call stopped with the client
    assert stats["requests"] == 1
    for kind in ("input", "output"):
        partial = metric(budget_server, "graphgate_partial_tokens_total", kind=kind)
        assert partial == usage[f"{kind}_tokens"]
        assert metric(budget_server, "graphgate_tokens_total", kind=kind) == partial

    # 0.001 USD or more spent of 0.0025: the next turn's 0.002 reservation does not fit.
    after = httpx.post(
        f"{budget_server.url}/chat/invoke",
        json={"input": {"question": f"again {marker}"}, "config": TWENTY_TOKENS},
        headers={"X-User-Id": user},
    )
    assert after.status_code == 429
    assert after.json()["error"]["code"] == "budget_exceeded"


def test_a_reply_that_fails_mid_stream_counts_what_streamed(
    budget_server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, tokens=20, drop_after=5)
    response = httpx.post(
        f"{budget_server.url}/chat/invoke",
        json={"input": {"question": f"drop me {marker}"}, "config": TWENTY_TOKENS},
        headers={"X-User-Id": user},
    )
    assert response.status_code == 502
    usage = partial_usage(budget_server, user)
    counter = TokenCounter(load_encoding(MODEL, None))
    assert usage["output_tokens"] == counter.count_text(words(5))
    assert usage["partial_requests"] == 1
