"""What a browser and an operator see: CORS only for listed origins, security headers on every
answer, `/metrics` behind its token, and the playground and docs off in production."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.example_agent import agent_behaves, agent_routes, ask
from tests.live_servers import Graphgate, StartGraphgate
from tests.upstream import Upstream

ORIGIN = "https://app.example.test"


@pytest.fixture(scope="module")
def guarded(
    graphgate_factory: StartGraphgate, tmp_path_factory: pytest.TempPathFactory
) -> Graphgate:
    """With the example agent as a graph route, for the LangGraph API's runs."""
    routes = agent_routes(tmp_path_factory.mktemp("routes"))
    return graphgate_factory(
        CORS_ORIGINS=ORIGIN, METRICS_TOKEN="metrics-token-for-tests", ROUTES_FILE=routes
    )


@pytest.fixture(scope="module")
def production(graphgate_factory: StartGraphgate) -> Graphgate:
    return graphgate_factory(
        "redis", APP_ENV="production", AUTH_MODE="api_key", METRICS_TOKEN="metrics-token-for-tests"
    )


def preflight(
    server: Graphgate,
    origin: str,
    path: str = "/chat/invoke",
    headers: str = "authorization,content-type",
) -> httpx.Response:
    return httpx.options(
        f"{server.url}{path}",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": headers,
        },
    )


def header_names(value: str) -> set[str]:
    """The names in a comma-separated header list, lower-cased."""
    return {name.strip().lower() for name in value.split(",")}


def test_a_listed_origin_passes_the_preflight_and_reads_the_trace_id(guarded: Graphgate) -> None:
    allowed = preflight(guarded, ORIGIN)
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "authorization" in allowed.headers["Access-Control-Allow-Headers"].lower()
    answer = httpx.post(
        f"{guarded.url}/chat/invoke", json={"input": {"question": "hi"}}, headers={"Origin": ORIGIN}
    )
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "x-trace-id" in answer.headers["Access-Control-Expose-Headers"].lower()


def test_a_listed_origin_runs_on_the_langgraph_api_and_reads_where_the_run_is(
    guarded: Graphgate, upstream: Upstream, marker: str
) -> None:
    """A browser's LangGraph client sends its key as `X-Api-Key` or `Authorization` and reads
    the run's id from `Content-Location` and where to rejoin it from `Location`."""
    path = f"/threads/{uuid.uuid4()}/runs/stream"
    allowed = preflight(guarded, ORIGIN, path, "x-api-key,authorization,content-type")
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    granted = header_names(allowed.headers["Access-Control-Allow-Headers"])
    assert {"x-api-key", "authorization"} <= granted
    agent_behaves(upstream, marker)
    run = {"assistant_id": "agent", "input": ask(marker), "if_not_exists": "create"}
    answer = httpx.post(
        f"{guarded.url}{path}",
        json={**run, "stream_resumable": True},
        headers={"Origin": ORIGIN},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    exposed = header_names(answer.headers["Access-Control-Expose-Headers"])
    assert {"location", "content-location"} <= exposed
    assert answer.headers["Location"] == f"{answer.headers['Content-Location']}/stream"


def test_another_origin_gets_no_cors_grant(guarded: Graphgate, production: Graphgate) -> None:
    assert "Access-Control-Allow-Origin" not in preflight(guarded, "https://evil.test").headers
    # CORS_ORIGINS empty (the default): same origin only.
    answer = httpx.get(f"{production.url}/health/live", headers={"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in answer.headers


@pytest.mark.parametrize("path", ["/health/live", "/chat/invoke", "/nope"])
def test_every_answer_carries_the_security_headers(guarded: Graphgate, path: str) -> None:
    response = httpx.request("GET" if path != "/chat/invoke" else "POST", f"{guarded.url}{path}")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "max-age=" in response.headers["Strict-Transport-Security"]
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert response.headers["X-Trace-Id"]


def test_the_playground_page_may_run_its_scripts_but_not_be_framed(guarded: Graphgate) -> None:
    page = httpx.get(f"{guarded.url}/chat/playground/")
    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"] == "frame-ancestors 'none'"


def test_metrics_need_the_token_when_one_is_set(guarded: Graphgate) -> None:
    assert httpx.get(f"{guarded.url}/metrics").status_code == 401
    wrong = httpx.get(f"{guarded.url}/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    right = httpx.get(
        f"{guarded.url}/metrics", headers={"Authorization": "Bearer metrics-token-for-tests"}
    )
    assert right.status_code == 200
    assert "graphgate_http_requests_total" in right.text


def test_production_serves_no_playground_and_no_docs(production: Graphgate) -> None:
    for path in ("/chat/playground/", "/docs", "/redoc"):
        assert httpx.get(f"{production.url}{path}").status_code in (401, 404), path
    assert httpx.get(f"{production.url}/openapi.json").status_code == 401
    assert httpx.get(f"{production.url}/health/ready").status_code == 200
