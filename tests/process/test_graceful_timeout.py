"""A drain lets a turn that has just started finish: the graceful timeout of the image's
gunicorn and of the chart covers a turn's longest life (waiting `QUEUE_TIMEOUT` for its
session, then `REQUEST_TIMEOUT`, or a route's longer one), and a shorter one is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import helm_python
import pytest

from graphs.settings import Settings
from scripts.processes import ROOT, child_env
from tests.deploy.test_chart import PRODUCTION, one, render
from tests.process.test_startup_refusal import GUNICORN, refusal_line, start

TURN_SETTINGS = ("GRACEFUL_TIMEOUT", "QUEUE_TIMEOUT", "REQUEST_TIMEOUT", "ROUTES_FILE")


def gunicorn_config(**settings: str) -> dict[str, Any]:
    """The values gunicorn.conf.py gives gunicorn, read in a fresh process with `settings`."""
    env = child_env(**settings)
    for name in TURN_SETTINGS:
        if name not in settings:
            env.pop(name, None)
    script = (
        "import json, runpy; c = runpy.run_path('gunicorn.conf.py'); "
        "print(json.dumps({'graceful_timeout': c['graceful_timeout'], 'timeout': c['timeout']}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    config: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return config


def test_the_image_drains_longer_than_a_turn_may_last() -> None:
    defaults = Settings()
    longest_turn = defaults.queue_timeout + defaults.request_timeout
    config = gunicorn_config()
    assert config["graceful_timeout"] > longest_turn
    assert config["timeout"] > config["graceful_timeout"]


def test_the_graceful_timeout_follows_the_turn_settings() -> None:
    assert gunicorn_config(REQUEST_TIMEOUT="90", QUEUE_TIMEOUT="20")["graceful_timeout"] > 110


def test_a_route_with_a_longer_request_timeout_lengthens_the_drain(tmp_path: Path) -> None:
    routes = tmp_path / "routes.toml"
    routes.write_text(
        '[routes.slow]\npath = "/slow"\n[routes.slow.limits]\nrequest_timeout = 120\n'
    )
    assert gunicorn_config(ROUTES_FILE=str(routes))["graceful_timeout"] > 10 + 120


def test_an_explicit_graceful_timeout_is_used_when_long_enough() -> None:
    assert gunicorn_config(GRACEFUL_TIMEOUT="75")["graceful_timeout"] == 75


def test_gunicorn_refuses_a_graceful_timeout_shorter_than_a_turn() -> None:
    line = refusal_line(start(GUNICORN, GRACEFUL_TIMEOUT="30", WEB_CONCURRENCY="1"))
    assert "GRACEFUL_TIMEOUT=30" in line
    assert "QUEUE_TIMEOUT" in line
    assert "REQUEST_TIMEOUT" in line


def drain_of(values: dict[str, Any]) -> tuple[int, int, int]:
    """(GRACEFUL_TIMEOUT, preStop pause, terminationGracePeriodSeconds) the chart renders."""
    manifests = render(values)
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    pause = int(pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][1])
    graceful = int(one(manifests, "ConfigMap")["data"]["GRACEFUL_TIMEOUT"])
    return graceful, pause, pod["terminationGracePeriodSeconds"]


@pytest.mark.parametrize(
    ("values", "longest_turn"),
    [
        ({}, 10 + 30),
        (PRODUCTION, 10 + 30),
        ({"config": {"REQUEST_TIMEOUT": "90", "QUEUE_TIMEOUT": "15"}}, 15 + 90),
        ({"config": {"REQUEST_TIMEOUT": "30.5"}}, 10 + 30.5),
    ],
    ids=["defaults", "production", "longer-turns", "fractional"],
)
def test_the_chart_drains_a_whole_turn_within_the_pods_grace_period(
    values: dict[str, Any], longest_turn: float
) -> None:
    graceful, pause, grace = drain_of(values)
    assert graceful > longest_turn
    assert grace > pause + graceful


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"gracefulTimeoutSeconds": 30}, "gracefulTimeoutSeconds"),
        ({"gracefulTimeoutSeconds": 60, "terminationGracePeriodSeconds": 60}, "terminationGrace"),
    ],
)
def test_the_chart_refuses_a_drain_shorter_than_a_turn_or_the_grace_period(
    values: dict[str, Any], named: str
) -> None:
    with pytest.raises(helm_python.HelmError, match=named):
        render(values)
