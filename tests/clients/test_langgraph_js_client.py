"""The LangGraph JavaScript client (`@langchain/langgraph-sdk`, locked in tests/js-langgraph)
against a running graphgate in Redis mode with API keys: under Node's test runner, and in
Chromium from a page on another origin (through CORS), which rejoins its thread on a reload."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import sync_playwright

from scripts.processes import ROOT, child_env, free_port
from tests.clients.conftest import CHROMIUM, CHROMIUM_FLAGS
from tests.conftest import create_key
from tests.example_agent import ANSWER, EXAMPLE_ROUTES, agent_behaves
from tests.live_servers import StartGraphgate
from tests.upstream import Upstream

JS = ROOT / "tests" / "js-langgraph"


def test_the_javascript_client_streams_waits_searches_resumes_cancels_and_deletes(
    graphgate_factory: StartGraphgate, upstream: Upstream, redis_url: str, marker: str
) -> None:
    slow = f"slow-{marker}"
    agent_behaves(upstream, marker)
    agent_behaves(upstream, slow, tokens_per_second=2)
    server = graphgate_factory("redis", AUTH_MODE="api_key", ROUTES_FILE=EXAMPLE_ROUTES)
    key = create_key(f"js-{uuid.uuid4().hex[:10]}", redis_url=redis_url)
    env = child_env(
        GRAPHGATE_URL=server.url,
        GRAPHGATE_API_KEY=key.key,
        MARKER=marker,
        SLOW_MARKER=slow,
        ANSWER=ANSWER,
    )
    result = subprocess.run(
        ["node", "--test", "--test-reporter=spec", "sdk.test.mjs"],
        cwd=JS,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pass 8" in result.stdout
    assert upstream.stats(slow)["cancelled"] == 1


@pytest.fixture(scope="module")
def page_origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The browser test's page on an origin of its own: index.html and the client bundled by
    esbuild (from the locked packages), served by a static file server on loopback."""
    site = tmp_path_factory.mktemp("page")
    shutil.copy(JS / "page" / "index.html", site / "index.html")
    bundle = ["--bundle", "--format=esm", "--platform=browser", f"--outfile={site / 'client.js'}"]
    subprocess.run(
        [str(JS / "node_modules" / ".bin" / "esbuild"), "page/entry.mjs", *bundle],
        cwd=JS,
        check=True,
        capture_output=True,
        timeout=60,
    )
    files = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    static = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), files)
    serving = threading.Thread(target=static.serve_forever, daemon=True)
    serving.start()
    yield f"http://127.0.0.1:{static.server_address[1]}"
    static.shutdown()
    serving.join()


def test_a_page_on_another_origin_streams_a_run_and_rejoins_its_thread_after_a_reload(
    graphgate_factory: StartGraphgate,
    upstream: Upstream,
    redis_url: str,
    page_origin: str,
    marker: str,
) -> None:
    agent_behaves(upstream, marker, tokens_per_second=40)
    server = graphgate_factory(
        "redis", AUTH_MODE="api_key", ROUTES_FILE=EXAMPLE_ROUTES, CORS_ORIGINS=page_origin
    )
    key = create_key(f"page-{uuid.uuid4().hex[:10]}", redis_url=redis_url)
    address = f"{page_origin}/index.html?" + urlencode(
        {"api": server.url, "key": key.key, "marker": marker}
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        page.goto(address)
        page.wait_for_function(
            "document.getElementById('answer').textContent || "
            "document.getElementById('failed').textContent"
        )
        assert page.text_content("#failed") == ""
        assert page.text_content("#answer") == ANSWER
        assert page.text_content("#tokens") == str(len(ANSWER.split()))
        assert page.text_content("#run")  # the run id, read from Content-Location
        page.reload()
        page.wait_for_function(
            "document.getElementById('restored').textContent || "
            "document.getElementById('failed').textContent"
        )
        assert page.text_content("#failed") == ""
        thread, types, history = (page.text_content("#restored") or "").split()
        assert types == "human,ai,tool,ai"
        assert history == "5"  # the run's steps, as the LangGraph server keeps them
        browser.close()
    found = httpx.get(f"{server.url}/threads/{thread}", headers=key.headers).json()
    assert found["metadata"]["page"] == marker
