"""Budgets hold under concurrency: each request reserves its worst case (its prompt, plus its
max_tokens, priced at the dearest configured model) at admission, a session's history once the
run has fitted it, and the reservations are replaced by what the turn used when it ends; a
request refused before it runs gives back its rate quota and its reservation."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import tiktoken
from langchain_core.messages import HumanMessage, SystemMessage

from graphs.model.tokens import OFFLINE_ENCODING, TokenCounter
from graphs.settings import DEFAULT_SYSTEM_PROMPT
from tests.conftest import FALLBACK_MODEL, create_key
from tests.live_servers import Graphgate, StartGraphgate
from tests.upstream import Upstream

MAX_INPUT = 120
MAX_TOKENS = 50
PRIMARY, OUTPUT_PRICE = "gpt-budget", 100  # USD per million output tokens; input is free
FALLBACK_OUTPUT_PRICE = 200  # the dearer model: reservations are priced at it
WORST_USD = MAX_TOKENS * FALLBACK_OUTPUT_PRICE / 1_000_000
REPLY_TOKENS = 40
APIS = ["chat", "v1"]


@pytest.fixture(scope="module")
def pricing_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("budget-prices") / "prices.toml"
    path.write_text(
        f'[models."{PRIMARY}"]\ninput = 0\noutput = {OUTPUT_PRICE}\n'
        f'[models."{FALLBACK_MODEL}"]\ninput = 0\noutput = {FALLBACK_OUTPUT_PRICE}\n'
    )
    return str(path)


def worst_tokens(question: str) -> int:
    """A fresh session turn's reservation on the chat route: the route's system message and
    the question, as the server counts them, plus `MAX_TOKENS`."""
    counter = TokenCounter(tiktoken.get_encoding(OFFLINE_ENCODING))
    prompt = [SystemMessage(DEFAULT_SYSTEM_PROMPT), HumanMessage(question)]
    return counter.count_messages(prompt) + MAX_TOKENS


def ask(api: str, question: str, session: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    """The path, body and headers of one session turn with `max_tokens` on either API."""
    if api == "v1":
        body = {
            "model": "graphgate",
            "messages": [{"role": "user", "content": question}],
            "max_tokens": MAX_TOKENS,
        }
        return "/v1/chat/completions", body, {"X-Session-Id": session}
    configurable = {"session_id": session, "max_tokens": MAX_TOKENS}
    body = {"input": {"question": question}, "config": {"configurable": configurable}}
    return "/chat/invoke", body, {}


async def concurrent_turns(
    server: Graphgate, api: str, user: str, marker: str, count: int
) -> list[httpx.Response]:
    async with httpx.AsyncClient(
        base_url=server.url, headers={"X-User-Id": user}, timeout=30
    ) as client:

        async def one(index: int) -> httpx.Response:
            path, body, headers = ask(api, f"turn {index} {marker}", uuid.uuid4().hex)
            return await client.post(path, json=body, headers=headers)

        return list(await asyncio.gather(*(one(i) for i in range(count))))


def today(server: Graphgate, user: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/usage?days=1", headers={"X-User-Id": user})
    response.raise_for_status()
    days = response.json()["days"]
    return days[0]["total"] if days else {}


def away_from_the_minute_end() -> None:
    """The token budget is per clock minute: start where the whole test fits in one."""
    left = 60 - time.time() % 60
    if left < 15:
        time.sleep(left + 0.5)


def assert_refusals_are_budget_exceeded(responses: list[httpx.Response]) -> int:
    """The refused responses are 429 budget_exceeded with Retry-After; how many passed."""
    passed = 0
    for response in responses:
        if response.status_code == 200:
            passed += 1
            continue
        assert response.status_code == 429, response.text
        assert response.json()["error"]["code"] == "budget_exceeded"
        assert int(response.headers["Retry-After"]) >= 1
    return passed


@pytest.mark.parametrize("api", APIS)
async def test_twenty_concurrent_turns_never_overshoot_tokens_per_minute(
    graphgate_factory: StartGraphgate,
    mode: str,
    api: str,
    upstream: Upstream,
    user: str,
    marker: str,
) -> None:
    worst = max(worst_tokens(f"turn {index} {marker}") for index in range(20))
    cap = 3 * worst + worst // 2  # three requests' worth, not four
    server = graphgate_factory(
        mode, TOKENS_PER_MINUTE=str(cap), MAX_INPUT_TOKENS=str(MAX_INPUT), RATE_LIMIT_MAX="1000"
    )
    upstream.behave(marker, tokens=REPLY_TOKENS, latency_ms=400)
    away_from_the_minute_end()
    responses = await concurrent_turns(server, api, user, marker, 20)
    used = today(server, user)
    assert used["total_tokens"] <= cap, used
    passed = assert_refusals_are_budget_exceeded(responses)
    assert 3 <= passed < 20
    assert used["requests"] == passed


@pytest.mark.parametrize("api", APIS)
async def test_twenty_concurrent_turns_never_overshoot_the_daily_budget(
    graphgate_factory: StartGraphgate,
    mode: str,
    api: str,
    pricing_file: str,
    upstream: Upstream,
    user: str,
    marker: str,
) -> None:
    cap = 3.5 * WORST_USD  # three requests' worth at the fallback's price, not four
    server = graphgate_factory(
        mode,
        PRICING_FILE=pricing_file,
        LLM_MODEL=PRIMARY,
        DAILY_BUDGET_USD=str(cap),
        MAX_INPUT_TOKENS=str(MAX_INPUT),
        RATE_LIMIT_MAX="1000",
    )
    upstream.behave(marker, tokens=REPLY_TOKENS, latency_ms=400)
    responses = await concurrent_turns(server, api, user, marker, 20)
    used = today(server, user)
    assert used["cost_usd"] <= cap, used
    passed = assert_refusals_are_budget_exceeded(responses)
    assert 3 <= passed < 20
    # Each turn that ran cost its real use, not its reservation.
    assert used["cost_usd"] == pytest.approx(passed * REPLY_TOKENS * OUTPUT_PRICE / 1_000_000)


def test_a_turn_whose_worst_case_exceeds_the_whole_cap_is_refused_by_name(
    graphgate_factory: StartGraphgate, mode: str, user: str, marker: str
) -> None:
    server = graphgate_factory(
        mode,
        TOKENS_PER_MINUTE=str(worst_tokens(f"too big {marker}") - 1),
        MAX_INPUT_TOKENS=str(MAX_INPUT),
    )
    path, body, headers = ask("chat", f"too big {marker}", uuid.uuid4().hex)
    response = httpx.post(
        f"{server.url}{path}", json=body, headers={"X-User-Id": user, **headers}, timeout=30
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert "TOKENS_PER_MINUTE" in error["message"]
    assert "max_tokens" in error["message"]


@pytest.mark.parametrize("api", APIS)
def test_a_keys_daily_budget_on_an_unpriced_model_is_refused_by_name(
    graphgate_factory: StartGraphgate, api: str, keys_file: Path, marker: str
) -> None:
    """The server has no budget of its own (so it starts with unpriced models), but a key
    does: its requests are refused rather than run with a budget nothing would count."""
    server = graphgate_factory(AUTH_MODE="api_key", API_KEYS_FILE=str(keys_file))
    key = create_key(
        f"p-{uuid.uuid4().hex[:10]}", "--daily-budget-usd", "1", "--file", str(keys_file)
    )
    path, body, headers = ask(api, f"budgeted {marker}", uuid.uuid4().hex)
    response = httpx.post(
        f"{server.url}{path}", json=body, headers={**key.headers, **headers}, timeout=30
    )
    assert response.status_code == 503, response.text
    assert "PRICING_FILE" in response.text
    assert "gpt-primary" in response.text


def test_a_multi_call_turn_is_settled_at_its_real_use_beyond_its_reservation(
    graphgate_factory: StartGraphgate,
    mode: str,
    tmp_path_factory: pytest.TempPathFactory,
    upstream: Upstream,
    user: str,
    marker: str,
) -> None:
    """A reservation covers one model call; a chain that calls twice uses more, and the ledger
    (so the next request's admission) sees all of it."""
    routes = tmp_path_factory.mktemp("twice") / "routes.toml"
    routes.write_text(
        '[routes.twice]\npath = "/twice"\nchain = "tests.chains.two_calls:make_chain"\n'
    )
    server = graphgate_factory(
        mode, ROUTES_FILE=str(routes), TOKENS_PER_MINUTE="400", MAX_INPUT_TOKENS="100"
    )
    upstream.behave(marker, reply="a " * 60)  # one tiktoken token a word: the draft fits
    away_from_the_minute_end()
    body = {
        "input": {"question": f"twice {marker}"},
        "config": {"configurable": {"max_tokens": 60}},
    }
    first = httpx.post(f"{server.url}/twice/invoke", json=body, headers={"X-User-Id": user})
    assert first.status_code == 200, first.text
    billed = sum(u["total_tokens"] for u in upstream.stats(marker)["usage"])
    assert billed > 100 + 60  # more than the turn reserved
    assert today(server, user)["total_tokens"] == billed
    statuses = [
        httpx.post(f"{server.url}/twice/invoke", json=body, headers={"X-User-Id": user}).status_code
        for _ in range(2)
    ]
    assert statuses == [200, 429]  # 2 x 193 used: no room for a third 160-token reservation


@pytest.mark.parametrize("api", APIS)
def test_a_sessions_history_is_reserved_as_it_grows_and_refused_at_the_cap(
    graphgate_factory: StartGraphgate,
    mode: str,
    api: str,
    upstream: Upstream,
    user: str,
    marker: str,
) -> None:
    """A session turn reserves its turn at admission and its history once the run has fitted
    it, before the model is called: a cap below MAX_INPUT_TOKENS still serves sessions, and the
    turn whose history would pass the cap is a 429, not served."""
    cap = 400
    server = graphgate_factory(mode, TOKENS_PER_MINUTE=str(cap), RATE_LIMIT_MAX="1000")
    upstream.behave(marker, tokens=15)
    away_from_the_minute_end()
    session, statuses = f"grow-{marker}", []
    with httpx.Client(base_url=server.url, headers={"X-User-Id": user}, timeout=30) as client:
        for turn in range(12):
            path, body, headers = ask(api, f"turn {turn} {marker}", session)
            response = client.post(path, json=body, headers=headers)
            statuses.append(response.status_code)
            if response.status_code != 200:
                assert response.status_code == 429, response.text
                assert response.json()["error"]["code"] == "budget_exceeded"
                break
    assert statuses[:2] == [200, 200]
    assert statuses[-1] == 429
    assert today(server, user)["total_tokens"] <= cap


def test_a_batch_of_unequal_turns_that_fits_its_cap_is_served(
    graphgate_factory: StartGraphgate, mode: str, upstream: Upstream, user: str, marker: str
) -> None:
    """Each run of a batch takes its own turn's reservation, whatever order they start in: a
    short turn's run never leaves a long turn to reserve again what the short one holds."""
    long_question = f"long {marker} " + "word " * 600
    questions = [f"hi {marker}", long_question]
    worst = sum(worst_tokens(question) for question in questions)
    server = graphgate_factory(
        mode, TOKENS_PER_MINUTE=str(worst + worst // 3), MAX_INPUT_TOKENS="2000"
    )
    upstream.behave(marker, tokens=5)
    away_from_the_minute_end()
    config = {"configurable": {"max_tokens": MAX_TOKENS}}
    response = httpx.post(
        f"{server.url}/chat/batch",
        json={"inputs": [{"question": q} for q in questions], "config": config},
        headers={"X-User-Id": user},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["output"]) == 2
