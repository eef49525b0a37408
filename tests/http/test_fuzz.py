"""Schema-driven fuzzing: Schemathesis generates requests for every operation of graphgate's own
OpenAPI document, authenticated, against a real server, and checks that no answer is a 5xx,
every answer is one the document lists with the body it describes, and none is slower than
REQUEST_TIMEOUT; every LangGraph API operation was among those tested; another principal's data
is the same afterwards.

`make test` runs the fuzzing phase, 60 cases per operation (about 900 in all, a minute);
`make fuzz` adds the coverage and stateful phases with 500 per operation (over 20,000)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest

from scripts.processes import ROOT, child_env
from tests.conftest import ApiKey, create_key
from tests.example_agent import agent_routes
from tests.http.test_openapi import LANGGRAPH_OPERATIONS
from tests.live_servers import Graphgate, StartGraphgate

REQUEST_TIMEOUT = 30
EXAMPLES_PER_OPERATION = os.environ.get("FUZZ_EXAMPLES", "60")
PHASES = os.environ.get("FUZZ_PHASES", "fuzzing")
MINIMUM_CASES = int(os.environ.get("FUZZ_MINIMUM_CASES", "500"))
CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance"
SUMMARY = re.compile(r"^\s*(\d+) generated, (\d+) passed", re.M)


@pytest.fixture(scope="module")
def fuzzed_server(
    graphgate_factory: StartGraphgate, tmp_path_factory: pytest.TempPathFactory
) -> Graphgate:
    """With a graph route, so the LangGraph API's runs reach a graph."""
    routes = agent_routes(tmp_path_factory.mktemp("routes"))
    return graphgate_factory(
        "redis",
        AUTH_MODE="api_key",
        REQUEST_TIMEOUT=str(REQUEST_TIMEOUT),
        CACHE_MODE="exact",
        ROUTES_FILE=routes,
    )


def snapshot(server: Graphgate, key: ApiKey, session: str) -> dict[str, Any]:
    return {
        "session": httpx.get(f"{server.url}/chat/sessions/{session}", headers=key.headers).json(),
        "usage": httpx.get(f"{server.url}/usage", headers=key.headers).json(),
    }


def fuzz(server: Graphgate, key: ApiKey, report: Path) -> subprocess.CompletedProcess[str]:
    """Schemathesis's command line, authenticated as `key` (its output filters the header),
    reporting each operation's outcome to `report` (JUnit XML)."""
    command = [
        *(sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json"),
        *("--header", f"Authorization: Bearer {key.key}"),
        *("--checks", CHECKS),
        *("--max-examples", EXAMPLES_PER_OPERATION, "--phases", PHASES),
        *("--max-response-time", str(REQUEST_TIMEOUT)),
        *("--request-timeout", str(REQUEST_TIMEOUT + 5)),
        *("--generation-database", "none", "--no-color"),
        *("--report", "junit", "--report-junit-path", str(report)),
    ]
    return subprocess.run(command, cwd=ROOT, env=child_env(), capture_output=True, text=True)


def passed_operations(report: Path) -> set[str]:
    """The operations (`POST /runs/wait`) the report shows tested, none failed or skipped."""
    cases = ElementTree.parse(report).getroot().iter("testcase")
    return {case.attrib["name"] for case in cases if len(case) == 0}


@pytest.mark.timeout(7200)
def test_fuzzing_the_openapi_document_finds_no_5xx_and_no_undocumented_answer(
    fuzzed_server: Graphgate, redis_url: str, tmp_path: Path
) -> None:
    fuzzer = create_key(
        f"fuzzer-{uuid.uuid4().hex[:8]}", "--rate-limit", "1000000", redis_url=redis_url
    )
    other = create_key(f"other-{uuid.uuid4().hex[:8]}", redis_url=redis_url)
    body = {"input": {"question": "mine"}, "config": {"configurable": {"session_id": "s1"}}}
    kept = httpx.post(f"{fuzzed_server.url}/chat/invoke", json=body, headers=other.headers)
    assert kept.status_code == 200
    before = snapshot(fuzzed_server, other, "s1")

    result = fuzz(fuzzed_server, fuzzer, tmp_path / "junit.xml")
    print(result.stdout[-1500:])  # the figures, for `make fuzz -s`
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    summary = SUMMARY.search(result.stdout)
    assert summary is not None, result.stdout[-2000:]
    generated, passed = int(summary.group(1)), int(summary.group(2))
    assert generated == passed >= MINIMUM_CASES
    langgraph = {f"{method.upper()} {path}" for path, method in LANGGRAPH_OPERATIONS}
    assert langgraph - passed_operations(tmp_path / "junit.xml") == set()
    assert snapshot(fuzzed_server, other, "s1") == before
