"""`make bench`'s harness in its quick mode, so that it cannot rot: every server of the
comparison starts and answers invoke under load without an error, the paced streams run on
the three streamed servers, every target of #23 gets a value, and the run writes its figures,
tables and chart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scripts.processes import ROOT, child_env

SERVERS = {
    "bare",
    "langserve_chain",
    "tutorial",
    "naive_graph",
    "naive_graph_stateless",
    "graphgate",
}
STREAMED = {"bare", "langserve_chain", "graphgate"}
TARGETS = {
    "S1 paced streams graphgate carries (must)",
    "S1 paced streams graphgate carries (stretch)",
    "S2 CPU per delivered token vs bare endpoint",
    "S2 KB of RSS per open stream",
    "T1 CPU per invoke request vs stateless graph (must)",
    "T2 c=1 p50 vs stateless graph",
    "T2 exact-cache hit c=1 p50 vs stateless graph c=1 p50",
    "T4 start-up seconds",
    "T4 RSS at start vs LangServe chain",
    "T5 late turns vs turns 2-6 of a session",
}


def quick_run(out: Path) -> dict[str, Any]:
    """`bench.request_path --quick` into `out`: its JSON."""
    harness = subprocess.Popen(
        [sys.executable, "-m", "bench.request_path", "--quick", "--out", str(out)],
        cwd=ROOT,
        env=child_env(),
        start_new_session=True,  # its group: Redis, the servers, wrk, the stream client
    )
    try:
        assert harness.wait(timeout=540) == 0
    finally:
        if harness.poll() is None:
            os.killpg(harness.pid, signal.SIGKILL)
            harness.wait()
    result: dict[str, Any] = json.loads((out / "request_path.json").read_text())
    return result


def check_invoke(servers: dict[str, Any]) -> None:
    for name, server in servers.items():
        for concurrency, figures in server["invoke"].items():
            assert figures["requests"] > 0, (name, concurrency)
            assert figures["errors"] == 0, (name, concurrency, figures)
            assert figures["cpu_ms_per_request"] > 0, (name, concurrency)


def check_paced(servers: dict[str, Any], reply_tokens: int) -> None:
    """Every streamed server's paced levels delivered whole replies and have every figure; no
    bare stream failed (a busy machine may fail a slower server's stream by a late gap, not by
    an error)."""
    assert {name for name, server in servers.items() if "paced" in server} == STREAMED
    for name in STREAMED:
        measured = servers[name]["paced"]["levels"]
        assert measured, name
        for level in measured:
            assert level["tokens"] > 0, (name, level)
            assert level["completed"] > 0, (name, level)
            assert level["tokens_per_stream"] >= reply_tokens, (name, level)
            # CPU is read in clock ticks (10 ms): the bare endpoint's short quick level may spend
            # less than one (one CI run read 0); graphgate's never does.
            spent = level["cpu_us_per_token"]
            assert spent > 0 if name == "graphgate" else spent >= 0, (name, level)
            assert level["ttft_p99_ms"] is not None, (name, level)
            assert level["token_gap_p99_ms"] is not None, (name, level)
            assert level["peak_open"] == level["streams"], (name, level)
    assert all(level["failed"] == 0 for level in servers["bare"]["paced"]["levels"])


@pytest.mark.timeout(600)
def test_the_quick_benchmark_measures_every_server_without_errors(tmp_path: Path) -> None:
    result = quick_run(tmp_path)
    servers = result["servers"]
    assert set(servers) == SERVERS
    check_invoke(servers)
    check_paced(servers, result["plan"]["paced"]["reply_tokens"])
    graphgate = servers["graphgate"]
    check_invoke({"graphgate, traced": graphgate["traced"]})
    assert graphgate["long_session"]["late_turns_ms"] > 0
    assert graphgate["cache_hit_c1"]["errors"] == 0
    assert all(ms > 0 for ms in result["savers"]["cpu_ms_per_turn"].values())
    # Each target has a value: every reference it divides by was measured (S2's CPU ratio
    # falls back to the first level when the two servers held none in common).
    assert set(result["targets"]) == TARGETS
    undefined = {name for name, t in result["targets"].items() if t["value"] is None}
    assert not undefined, result["targets"]
    assert (tmp_path / "request_path.png").stat().st_size > 10_000
    table = (tmp_path / "request_path.md").read_text()
    assert "graphgate" in table
    assert "carries" in table
    assert "the same graph served with no state at all" in table
