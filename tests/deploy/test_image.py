"""The Dockerfile: hadolint-clean, its CMD line serves (in the test venv; no Docker engine runs
here), its HEALTHCHECK passes, and it copies every package the server imports."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx

from scripts.processes import ROOT, ManagedProcess, child_env, free_port
from tests.upstream import Upstream

DOCKERFILE = ROOT / "Dockerfile"
VENV_BIN = Path(sys.executable).parent


def instruction(name: str) -> list[str]:
    """The exec-form (JSON) arguments of the Dockerfile's last `name` instruction."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    found = re.findall(rf"^{name}\b.*?(\[.*\])\s*$", text, re.M)
    arguments: list[str] = json.loads(found[-1])
    return arguments


def test_hadolint_passes() -> None:
    result = subprocess.run(
        [str(VENV_BIN / "hadolint"), str(DOCKERFILE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_copies_every_package_the_server_imports() -> None:
    copied = set(re.findall(r"^COPY (\w+)/ ", DOCKERFILE.read_text(), re.M))
    local = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    entry_points = [ROOT / "server.py", ROOT / "gunicorn.conf.py"]
    sources = [*entry_points, *(p for d in copied for p in (ROOT / d).rglob("*.py"))]
    # Imports, and modules named in a setting (gunicorn's `worker_class`).
    imported = {
        name
        for source in sources
        for pattern in (r"^\s*(?:from|import) (\w+)", r"^\w+ = [\"'](\w+)\.")
        for name in re.findall(pattern, source.read_text(), re.M)
    }
    assert imported & local <= copied


def test_the_cmd_line_serves_and_the_healthcheck_passes(
    redis_url: str, upstream: Upstream, tmp_path: Path
) -> None:
    """As production runs it: Redis, a real model, API keys (the start-up checks pass)."""
    port = free_port()
    env = child_env(
        PATH=f"{VENV_BIN}:{child_env()['PATH']}",
        HOST="127.0.0.1",
        PORT=str(port),
        REDIS_URL=redis_url,
        APP_ENV="production",
        WEB_CONCURRENCY="2",
        AUTH_MODE="api_key",
        METRICS_TOKEN="metrics-token-for-the-image-test",
        OPENAI_BASE_URL=upstream.api_url,
    )
    server = ManagedProcess(
        instruction("CMD"),
        env=env,
        ready_text="Application startup complete",
        ready_count=2,
        log_path=tmp_path / "image.log",
    )
    server.start()
    try:
        ready = httpx.get(f"http://127.0.0.1:{port}/health/ready")
        assert ready.status_code == 200, ready.text
        healthcheck = instruction("HEALTHCHECK")
        assert subprocess.run(healthcheck, env=env, cwd=ROOT, timeout=10).returncode == 0
    finally:
        assert server.stop() == 0
