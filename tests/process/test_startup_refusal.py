"""An unsafe production configuration never serves: the process exits non-zero at start with one
line naming the setting to fix; several gunicorn workers without Redis are refused anywhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from scripts.processes import ROOT, UVICORN_LISTENING, ManagedProcess, child_env, free_port
from tests.upstream import Upstream

UVICORN = [sys.executable, "-m", "uvicorn", "server:app", "--host", "127.0.0.1"]
GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "server:app"]


def start(command: list[str], **settings: str) -> subprocess.CompletedProcess[str]:
    """Run the server command until it exits (a refused start exits at once)."""
    port = str(free_port())
    bind = ["--port", port] if command is UVICORN else ["-b", f"127.0.0.1:{port}"]
    command = [*command, *bind]
    env = child_env(**settings)
    for name in ("REDIS_URL", "REDIS_HOST", "OPENAI_API_KEY", "OPENAI_BASE_URL", "AUTH_MODE"):
        if name not in settings:
            env.pop(name, None)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def refusal_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if "refuses to start" in line]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def real_model(upstream: Upstream) -> dict[str, str]:
    return {"OPENAI_BASE_URL": upstream.api_url}


def test_production_without_authentication_exits_naming_auth_mode(
    redis_url: str, real_model: dict[str, str]
) -> None:
    line = refusal_line(start(UVICORN, APP_ENV="production", REDIS_URL=redis_url, **real_model))
    assert "AUTH_MODE" in line
    assert "ALLOW_ANONYMOUS" in line


def test_production_with_the_demo_model_exits_naming_the_model_settings(redis_url: str) -> None:
    line = refusal_line(
        start(UVICORN, APP_ENV="production", AUTH_MODE="api_key", REDIS_URL=redis_url)
    )
    assert "demo model" in line
    assert "OPENAI_API_KEY" in line


def test_production_without_redis_exits_naming_redis_url(real_model: dict[str, str]) -> None:
    line = refusal_line(
        start(UVICORN, APP_ENV="production", AUTH_MODE="trusted_header", **real_model)
    )
    assert "REDIS_URL" in line


def test_gunicorn_with_two_workers_and_no_redis_exits_in_development() -> None:
    line = refusal_line(start(GUNICORN, APP_ENV="development", WEB_CONCURRENCY="2"))
    assert "REDIS_URL" in line
    assert "WEB_CONCURRENCY" in line


def test_production_under_gunicorn_refuses_in_the_master(redis_url: str) -> None:
    result = start(GUNICORN, APP_ENV="production", REDIS_URL=redis_url, WEB_CONCURRENCY="1")
    assert "AUTH_MODE" in refusal_line(result)
    assert "Booting worker" not in result.stderr


def test_allow_anonymous_lets_production_start(
    redis_url: str, real_model: dict[str, str], tmp_path: Path
) -> None:
    """The refusals are the only reason the others exit: with ALLOW_ANONYMOUS it serves."""
    port = free_port()
    env = child_env(
        APP_ENV="production",
        ALLOW_ANONYMOUS="true",
        REDIS_URL=redis_url,
        METRICS_TOKEN="metrics-token-for-tests",
        **real_model,
    )
    server = ManagedProcess(
        [*UVICORN, "--port", str(port)],
        env=env,
        ready_text=UVICORN_LISTENING,
        log_path=tmp_path / "server.log",
    )
    server.start()
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/health/ready").status_code == 200
    finally:
        server.stop()


def test_the_semantic_cache_on_a_redis_cluster_exits_naming_cache_mode(redis_url: str) -> None:
    line = refusal_line(
        start(UVICORN, REDIS_URL=redis_url, REDIS_CLUSTER="true", CACHE_MODE="semantic")
    )
    assert "CACHE_MODE=semantic" in line
    assert "Redis Cluster" in line
