"""The suite's servers fork from a launcher that has imported the libraries
(`tests/warm_launcher.py`); what such a server serves must be what the command line starts:
the same OpenAPI document, and the settings of its own environment, not the launcher's."""

from __future__ import annotations

from pathlib import Path

import httpx

from scripts.processes import UVICORN_LISTENING, ManagedProcess, Spawn, child_env, free_port, popen
from tests.conftest import UVICORN
from tests.upstream import Upstream
from tests.warm_launcher import ForkedChild, WarmLauncher

PROMPT = "You are a lighthouse keeper."


def start(spawn: Spawn, upstream: Upstream, log_path: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    settings = {"APP_ENV": "test", "OPENAI_BASE_URL": upstream.api_url, "SYSTEM_PROMPT": PROMPT}
    process = ManagedProcess(
        [*UVICORN, "--port", str(port)],
        env=child_env(**settings),
        ready_text=UVICORN_LISTENING,
        log_path=log_path,
        spawn=spawn,
    )
    process.start()
    return process, f"http://127.0.0.1:{port}"


def test_a_forked_server_serves_what_the_command_line_starts(
    warm_launcher: WarmLauncher, upstream: Upstream, tmp_path: Path, marker: str
) -> None:
    cold, cold_url = start(popen, upstream, tmp_path / "cold.log")
    warm, warm_url = start(warm_launcher.spawn, upstream, tmp_path / "warm.log")
    try:
        assert isinstance(warm.process, ForkedChild)
        document = httpx.get(f"{warm_url}/openapi.json").json()
        assert document == httpx.get(f"{cold_url}/openapi.json").json()
        question = {"input": {"question": f"which light {marker}"}}
        assert httpx.post(f"{warm_url}/chat/invoke", json=question, timeout=30).is_success
        (sent,) = upstream.sent_messages(marker)
        assert sent[0] == {"role": "system", "content": PROMPT}
    finally:
        cold.stop()
        warm.stop()
    assert warm.process.returncode is not None
