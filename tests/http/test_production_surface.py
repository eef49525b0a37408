"""What production shows a caller without credentials: `/metrics` only behind `METRICS_TOKEN`
(production refuses to start without one, and the chart provides it from a Secret), and
readiness as ready or not with the failing check, never the configured models, URLs or
settings; the metrics token shows the operator the details."""

from __future__ import annotations

from pathlib import Path

import helm_python
import httpx
import pytest

from tests.conftest import FALLBACK_MODEL, ISSUED_SECRETS, PRIMARY_MODEL
from tests.deploy.test_chart import one, render
from tests.live_servers import Graphgate, StartGraphgate
from tests.process.test_startup_refusal import UVICORN, refusal_line, start
from tests.redis_servers import start_redis
from tests.upstream import Upstream

TOKEN = "metrics-token-for-production-tests"
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}


def production_settings(**settings: str) -> dict[str, str]:
    ISSUED_SECRETS.add(TOKEN)  # never to be logged
    return {"APP_ENV": "production", "AUTH_MODE": "api_key", "METRICS_TOKEN": TOKEN, **settings}


@pytest.fixture(scope="module")
def production(graphgate_factory: StartGraphgate) -> Graphgate:
    return graphgate_factory("redis", **production_settings())


def test_production_without_a_metrics_token_exits_naming_it(
    redis_url: str, upstream: Upstream
) -> None:
    settings = production_settings(REDIS_URL=redis_url, OPENAI_BASE_URL=upstream.api_url)
    del settings["METRICS_TOKEN"]
    assert "METRICS_TOKEN" in refusal_line(start(UVICORN, **settings))


def test_production_metrics_need_the_token(production: Graphgate) -> None:
    assert httpx.get(f"{production.url}/metrics").status_code == 401
    assert httpx.get(f"{production.url}/metrics", headers=OPERATOR).status_code == 200


def test_readiness_tells_anyone_ready_and_nothing_configured(
    production: Graphgate, upstream: Upstream, redis_url: str
) -> None:
    ready = httpx.get(f"{production.url}/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"redis": "ok", "auth": "ok", "model": "ok"},
    }
    for configured in (PRIMARY_MODEL, FALLBACK_MODEL, upstream.api_url, redis_url, "openai"):
        assert configured not in ready.text


def test_readiness_shows_the_operator_the_details(production: Graphgate) -> None:
    ready = httpx.get(f"{production.url}/health/ready", headers=OPERATOR)
    assert ready.status_code == 200
    assert f"openai:{PRIMARY_MODEL}" in ready.json()["models"]
    wrong = httpx.get(f"{production.url}/health/ready", headers={"Authorization": "Bearer no"})
    assert "models" not in wrong.json()


def test_readiness_says_which_check_failed_without_details(
    graphgate_factory: StartGraphgate, tmp_path: Path
) -> None:
    redis = start_redis(tmp_path, tmp_path / "redis.log")
    server = graphgate_factory(fresh=True, **production_settings(REDIS_URL=redis.url))
    try:
        redis.process.stop()
        ready = httpx.get(f"{server.url}/health/ready", timeout=30)
        assert ready.status_code == 503
        assert ready.json() == {
            "status": "not ready",
            "checks": {"redis": "unreachable", "auth": "ok", "model": "ok"},
        }
        detailed = httpx.get(f"{server.url}/health/ready", headers=OPERATOR, timeout=30)
        assert detailed.json()["checks"]["redis"].startswith("unreachable: ")
    finally:
        server.process.stop()
        redis.process.stop()


def test_the_chart_gives_the_pods_the_metrics_token_from_the_secret() -> None:
    (container,) = one(render({}), "Deployment")["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item for item in container.get("env", [])}
    reference = env["METRICS_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert reference == {"name": "graphgate-keys", "key": "METRICS_TOKEN"}


def test_the_chart_refuses_to_render_without_a_secret() -> None:
    with pytest.raises(helm_python.HelmError, match="existingSecret"):
        render({"existingSecret": ""})
