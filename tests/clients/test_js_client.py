"""The JavaScript client: tests/js runs LangServe's RemoteRunnable (@langchain/core 0.3) under
Node's test runner against a running graphgate."""

from __future__ import annotations

import subprocess

from scripts.processes import ROOT, child_env
from tests.live_servers import StartGraphgate
from tests.upstream import Upstream


def test_the_javascript_remote_runnable_invokes_streams_batches_and_remembers(
    graphgate_factory: StartGraphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(f"stream {marker}", tokens=20, tokens_per_second=40)
    server = graphgate_factory("redis")
    result = subprocess.run(
        ["node", "--test", "--test-reporter=spec"],
        cwd=ROOT / "tests" / "js",
        env=child_env(GRAPHGATE_URL=server.url, GRAPHGATE_USER=user, MARKER=marker),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pass 4" in result.stdout
