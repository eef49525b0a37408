"""`make run` installs what serving needs and nothing more: a fresh venv built by `make install`
holds no torch (nor any test tool) and serves a chat turn on the demo model."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from scripts.processes import ROOT, UVICORN_LISTENING, ManagedProcess, child_env, free_port

DEV_ONLY = ["torch", "sentence-transformers", "pytest", "mypy", "schemathesis", "playwright"]


@pytest.fixture(scope="module")
def serving_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("serving") / "venv"
    subprocess.run(
        ["make", "install", f"VENV={venv}"],
        cwd=ROOT,
        env=child_env(),
        check=True,
        capture_output=True,
        timeout=600,
    )
    return venv


def test_make_install_installs_no_dev_package(serving_venv: Path) -> None:
    python = serving_venv / "bin" / "python"
    listed = subprocess.run(
        [str(serving_venv / "bin" / "uv"), "pip", "list", "--python", str(python)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    names = {line.split()[0] for line in listed.splitlines()[2:] if line.strip()}
    assert "langserve" in names
    assert not names & set(DEV_ONLY)


def test_the_serving_venv_serves_a_turn(serving_venv: Path, tmp_path: Path) -> None:
    port = free_port()
    server = ManagedProcess(
        [str(serving_venv / "bin" / "python"), "-m", "uvicorn", "server:app", "--port", str(port)],
        env=child_env(DEMO_TOKENS_PER_SECOND="0", OPENAI_BASE_URL="", OPENAI_API_KEY=""),
        ready_text=UVICORN_LISTENING,
        log_path=tmp_path / "serving.log",
    )
    server.start()
    try:
        response = httpx.post(
            f"http://127.0.0.1:{port}/chat/invoke", json={"input": {"question": "hello"}}
        )
    finally:
        server.stop()
    assert response.status_code == 200
    assert response.json()["output"]["content"] == "(demo model) Turn 1. You said: hello"
