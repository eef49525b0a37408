"""One error renderer, in process (httpx's ASGI transport, the app's real middleware): every
refusal is counted once by code, every answer carries X-Trace-Id, and an unexpected error is a
500 with the error body, logged once, with its trace id."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from graphs.settings import Settings
from middleware.drain import DRAIN
from server import create_app


def refusals(code: str) -> float:
    return REGISTRY.get_sample_value("graphgate_refusals_total", {"code": code}) or 0.0


@pytest.fixture
async def app() -> AsyncIterator[FastAPI]:
    app = create_app(Settings(app_env="test", demo_tokens_per_second=0))

    async def boom() -> None:
        raise ZeroDivisionError("a bug")

    app.add_api_route("/boom", boom)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://graphgate") as client:
        yield client


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What the app logs, formatted as the app formats it (JSON lines), as it is logged."""
    root = logging.getLogger()
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(root.handlers[0].formatter)
    root.addHandler(handler)
    yield lines
    root.removeHandler(handler)


async def test_an_unexpected_error_is_a_500_with_trace_id_logged_once(
    client: httpx.AsyncClient, log_lines: io.StringIO
) -> None:
    response = await client.get("/boom")
    assert response.status_code == 500
    trace_id = response.headers["X-Trace-Id"]
    error = {"code": "internal_error", "message": "Internal server error.", "trace_id": trace_id}
    assert response.json() == {"error": error}
    assert "a bug" not in response.text
    records = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    tracebacks = [record for record in records if "ZeroDivisionError" in json.dumps(record)]
    assert len(tracebacks) == 1
    assert tracebacks[0]["trace_id"] == trace_id
    assert tracebacks[0]["level"] == "error"
    access = [record for record in records if record.get("path") == "/boom"]
    assert [(line["status"], line["trace_id"]) for line in access] == [(500, trace_id)]


async def test_each_refusal_is_counted_once_by_its_code(client: httpx.AsyncClient) -> None:
    cases: list[tuple[str, dict[str, Any]]] = [
        ("payload_too_large", {"content": b"x" * 2_000_000}),
        ("invalid_input", {"headers": {"X-User-Id": "not valid!"}}),
        ("unsupported_media_type", {"content": b"{}", "headers": {"Content-Type": "text/plain"}}),
        ("validation_error", {"json": {"input": {"question": 3}}}),
    ]
    for code, request in cases:
        before = refusals(code)
        response = await client.post("/chat/invoke", **request)
        assert response.json()["error"]["code"] == code
        assert "X-Trace-Id" in response.headers
        assert refusals(code) == before + 1


async def test_shutting_down_is_counted_once(client: httpx.AsyncClient) -> None:
    before = refusals("shutting_down")
    DRAIN.start()
    try:
        response = await client.post("/chat/invoke", json={"input": {"question": "hi"}})
    finally:
        DRAIN.draining = False
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"]["trace_id"] == response.headers["X-Trace-Id"]
    assert refusals("shutting_down") == before + 1


async def test_unauthenticated_is_counted_once(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("")
    app = create_app(Settings(app_env="test", auth_mode="api_key", api_keys_file=keys))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://graphgate") as client,
    ):
        before = refusals("unauthenticated")
        response = await client.get("/usage")
    assert response.status_code == 401
    assert refusals("unauthenticated") == before + 1
