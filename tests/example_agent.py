"""The example agent (`examples/agent.py`) as the tests drive it through the OpenAI double: the
model calls `search_docs` once, then answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scripts.processes import ROOT
from tests.live_servers import route_file
from tests.upstream import Upstream

EXAMPLE_ROUTES = str(ROOT / "examples" / "routes.toml")  # the example app, agents included
ANSWER = "Retry-After tells you when to come back"


def agent_routes(folder: Path) -> str:
    """A route file in `folder` that serves the example agent alone, as the graph route
    `agent`: its path, for `ROUTES_FILE`."""
    return route_file(folder, '[routes.agent]\ngraph = "examples.agent:make_graph"\n')


def agent_behaves(upstream: Upstream, marker: str, **answer: Any) -> None:
    """The model calls `search_docs` once, then answers `ANSWER` (the double's
    `tool_calls_once`)."""
    upstream.behave(
        marker,
        tool_calls=[{"name": "search_docs", "arguments": {"term": "Retry-After"}}],
        tool_calls_once=True,
        reply=ANSWER,
        **answer,
    )


def ask(marker: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": f"When may I retry? {marker}"}]}
