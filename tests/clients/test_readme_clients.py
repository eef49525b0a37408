"""Every executed example of the README and of the pages in docs/ runs against a real server, as
written there (only the address changes), so the documentation cannot rot. An example is a code
block marked `<!-- example: NAME -->`; it keeps running wherever it moves among those pages."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from scripts.processes import ROOT, child_env
from tests.conftest import ApiKey, create_key
from tests.example_agent import agent_routes
from tests.live_servers import Graphgate, StartGraphgate
from tests.upstream import Upstream

README_ADDRESS = "http://127.0.0.1:8000"
EXAMPLE = re.compile(r"<!-- example: (\S+) -->\n```(\w+)\n(.*?)```", re.S)


def documentation() -> list[Path]:
    """The README, then every page of docs/ in name order."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def examples(address: str) -> dict[str, str]:
    found = {
        name: code.replace(README_ADDRESS, address)
        for page in documentation()
        for name, _, code in EXAMPLE.findall(page.read_text())
    }
    assert set(found) == {
        "python-remote-runnable",
        "js-remote-runnable",
        "curl",
        "openai-sdk",
        "browser-fetch",
        "own-chain-factory",
        "own-chain-routes",
        "own-chain-client",
        "langgraph-sdk",
    }
    return found


@pytest.fixture(scope="module")
def readme_server(
    graphgate_factory: StartGraphgate, keys_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Graphgate:
    """With the example agent as a graph route, as `examples/routes.toml` serves it."""
    routes = agent_routes(tmp_path_factory.mktemp("routes"))
    return graphgate_factory(AUTH_MODE="api_key", API_KEYS_FILE=str(keys_file), ROUTES_FILE=routes)


@pytest.fixture(scope="module")
def readme_key(keys_file: Path) -> ApiKey:
    return create_key(f"readme-{uuid.uuid4().hex[:8]}", "--file", str(keys_file))


def run(command: list[str], key: ApiKey, cwd: str = str(ROOT)) -> str:
    env = child_env(GRAPHGATE_API_KEY=key.key)
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_python_remote_runnable_example(readme_server: Graphgate, readme_key: ApiKey) -> None:
    code = examples(readme_server.url)["python-remote-runnable"]
    assert run([sys.executable, "-c", code], readme_key).splitlines() == [
        "Echo: Hi, I am Ada.",
        "Echo: What is my name?",
    ]


def test_the_langgraph_sdk_example(readme_server: Graphgate, readme_key: ApiKey) -> None:
    code = examples(readme_server.url)["langgraph-sdk"]
    assert run([sys.executable, "-c", code], readme_key).splitlines() == [
        "Echo: How do rate limits work?",
        "2 messages in the thread",
    ]


def test_the_openai_sdk_example(readme_server: Graphgate, readme_key: ApiKey) -> None:
    code = examples(readme_server.url)["openai-sdk"]
    lines = run([sys.executable, "-c", code], readme_key).splitlines()
    assert lines[0].startswith("Echo: Hi! ")
    assert int(lines[0].split()[-1]) > 0
    assert lines[1] == "Echo: Stream it."


def test_the_curl_example(readme_server: Graphgate, readme_key: ApiKey) -> None:
    output = run(["bash", "-c", examples(readme_server.url)["curl"]], readme_key)
    assert '"content":"Echo: Hi!"' in output
    assert '"content":"Echo:"' in output
    assert "event: end" in output


def test_the_javascript_example(readme_server: Graphgate, readme_key: ApiKey) -> None:
    script = ROOT / "tests" / "js" / f"readme-{uuid.uuid4().hex}.mjs"
    script.write_text(examples(readme_server.url)["js-remote-runnable"])
    try:
        output = run(["node", script.name], readme_key, cwd=str(script.parent))
    finally:
        script.unlink()
    assert output.splitlines() == ["Echo: Hi, I am Ada.", "Echo: What is my name?"]


def test_the_browser_fetch_example(
    readme_server: Graphgate, readme_key: ApiKey, browser: Browser
) -> None:
    page = browser.new_page()
    # Your own page, on the API's origin (graphgate's answers forbid scripts in themselves).
    own_page = f"{readme_server.url}/your-page"
    page.route(
        own_page, lambda route: route.fulfill(body="<html></html>", content_type="text/html")
    )
    page.goto(own_page)
    page.evaluate(f"sessionStorage.setItem('graphgate-token', '{readme_key.key}')")
    logged: list[str] = []
    page.on("console", lambda m: logged.append(m.text) if m.type == "log" else None)
    page.evaluate(f"async () => {{ {examples(readme_server.url)['browser-fetch']} }}")
    assert logged == ["Echo: Stream it."]


def test_the_serve_your_own_chain_example(
    graphgate_factory: StartGraphgate,
    keys_file: Path,
    readme_key: ApiKey,
    upstream: Upstream,
    tmp_path: Path,
) -> None:
    """The factory and the route file as docs/routes.md writes them, served, then called."""
    readme = examples(README_ADDRESS)
    (tmp_path / "translator.py").write_text(readme["own-chain-factory"])
    (tmp_path / "routes.toml").write_text(readme["own-chain-routes"])
    server = graphgate_factory(
        AUTH_MODE="api_key",
        API_KEYS_FILE=str(keys_file),
        ROUTES_FILE=str(tmp_path / "routes.toml"),
        PYTHONPATH=str(tmp_path),
    )
    code = examples(server.url)["own-chain-client"]
    assert run([sys.executable, "-c", code], readme_key).splitlines() == ["Echo: Good morning"]
    (sent,) = upstream.sent_messages("Good morning")[-1:]
    assert sent[0] == {"role": "system", "content": "Translate what the user writes into French."}
    assert upstream.stats("Good morning")["bodies"][-1]["model"] == "gpt-4o-mini"
