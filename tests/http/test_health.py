"""Liveness and readiness, and what happens when Redis is missing, lacks modules or goes away."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.live_servers import StartGraphgate
from tests.redis_servers import start_redis


def test_liveness_and_readiness_report_embedded_mode(graphgate_factory: StartGraphgate) -> None:
    server = graphgate_factory()
    assert httpx.get(f"{server.url}/health/live").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["redis"].startswith("embedded")


def test_readiness_checks_redis_and_its_modules(graphgate_factory: StartGraphgate) -> None:
    ready = httpx.get(f"{graphgate_factory('redis').url}/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["redis"] == "ok"


def test_readiness_turns_503_and_says_why_when_redis_goes_away(
    graphgate_factory: StartGraphgate, tmp_path: Path
) -> None:
    redis = start_redis(tmp_path, tmp_path / "redis.log")
    server = graphgate_factory(fresh=True, REDIS_URL=redis.url)
    try:
        assert httpx.get(f"{server.url}/health/ready").status_code == 200
        redis.process.stop()
        ready = httpx.get(f"{server.url}/health/ready", timeout=30)
        assert ready.status_code == 503
        assert ready.json()["checks"]["redis"].startswith("unreachable")
        assert httpx.get(f"{server.url}/health/live").status_code == 200
        turn = httpx.post(
            f"{server.url}/chat/invoke", json={"input": {"question": "hi"}}, timeout=30
        )
        assert turn.status_code == 503
        assert turn.json()["error"]["code"] == "unavailable"
        assert turn.json()["error"]["trace_id"] == turn.headers["X-Trace-Id"]
    finally:
        server.process.stop()
        redis.process.stop()


def test_an_api_key_checked_while_redis_is_away_is_503_not_500(
    graphgate_factory: StartGraphgate, tmp_path: Path
) -> None:
    redis = start_redis(tmp_path, tmp_path / "redis.log")
    server = graphgate_factory(fresh=True, REDIS_URL=redis.url, AUTH_MODE="api_key")
    try:
        redis.process.stop()
        turn = httpx.post(
            f"{server.url}/chat/invoke",
            json={"input": {"question": "hi"}},
            headers={"Authorization": "Bearer gg_any"},
            timeout=30,
        )
        assert turn.status_code == 503
        assert turn.json()["error"]["code"] == "unavailable"
        assert "Retry-After" in turn.headers
    finally:
        server.process.stop()
        redis.process.stop()


def test_a_plain_redis_without_modules_serves_sessions_and_is_ready(
    graphgate_factory: StartGraphgate, tmp_path: Path, user: str
) -> None:
    """Managed Redis (ElastiCache, Memorystore, Valkey) has no modules: everything but the
    semantic cache runs on it, session memory included."""
    plain = start_redis(tmp_path, tmp_path / "redis.log", with_modules=False)
    server = graphgate_factory(fresh=True, REDIS_URL=plain.url, CACHE_MODE="exact")
    try:
        ready = httpx.get(f"{server.url}/health/ready")
        assert ready.status_code == 200
        assert ready.json()["checks"]["redis"] == "ok"
        headers = {"X-User-Id": user}
        config = {"configurable": {"session_id": "plain"}}
        for question in ("first", "second"):
            body = {"input": {"question": question}, "config": config}
            turn = httpx.post(f"{server.url}/chat/invoke", json=body, headers=headers, timeout=30)
            assert turn.status_code == 200
        history = httpx.get(f"{server.url}/chat/sessions/plain", headers=headers)
        assert [m["content"] for m in history.json()["messages"]][::2] == ["first", "second"]
    finally:
        server.process.stop()
        plain.process.stop()


def test_the_semantic_cache_on_a_redis_without_search_is_refused_at_start_up(
    graphgate_factory: StartGraphgate, tmp_path: Path
) -> None:
    plain = start_redis(tmp_path, tmp_path / "redis.log", with_modules=False)
    try:
        with pytest.raises(RuntimeError, match=r"module search, for the semantic cache"):
            graphgate_factory(
                fresh=True,
                REDIS_URL=plain.url,
                CACHE_MODE="semantic",
                EMBEDDINGS_MODEL="local:all-MiniLM-L6-v2",
                HF_HUB_OFFLINE="1",
            )
    finally:
        plain.process.stop()
