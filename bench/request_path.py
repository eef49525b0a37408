"""`make bench`: what graphgate's request path costs, beside five reference servers measured with
the same load in the same run (`bench/anchors/`): a bare Starlette endpoint, a LangServe chain,
a tutorial-style FastAPI app and a naive LangServe + LangGraph graph, with the stock Redis saver
and without a checkpointer. Every server is one uvicorn worker pinned to core 1 and uses the
same instant in-process model with a 20-token reply; wrk, the stream client, Redis and this
harness run on core 0. graphgate runs its whole pipeline: API keys, rate limit, token and spend
budgets, usage ledger, metrics, the JSON access line at INFO, sessions in Redis. Then the
LangServe chain and graphgate start again with the model paced at 20 tokens/s for T3's
concurrent streams (`bench/paced_streams.py`), graphgate with its exact cache for T6's hits; T5
plays sessions of 200 turns on graphgate (`bench/long_session.py`), and the session savers' CPU
per turn is compared in process (`bench/savers.py`).

    make bench                                    # about 8 minutes; bench/results/ and docs/
    .venv/bin/python -m bench.request_path --quick --out /tmp/bench   # seconds per point

The load: 1,000 sessions of 100 users (an API key each), each request the next turn of one;
every phase (each concurrency, the streams) starts sessions of its own, and waits until the
server is idle. CPU per request is the server's CPU time during the phase over the requests
wrk completed: the requests still in flight at its end (up to c) make it a few % high.
"""

from __future__ import annotations

import argparse
import compileall
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from bench import wrk
from bench.comparison import (
    LOAD_CORE,
    QUESTION,
    Server,
    issue_keys,
    load,
    servers,
    start_redis,
    start_server,
)
from bench.long_session import turn_costs
from bench.paced_streams import TOKENS_PER_SECOND, capacity
from bench.request_path_report import DOCS_PAGE, chart, readme_table, replace_marked, targets
from bench.savers import saver_costs
from scripts.processes import ROOT, cpu_seconds, rss_mb

RESULTS = ROOT / "bench" / "results"
SOURCES = ("graphs", "api", "middleware", "auth", "serving")


@dataclass(frozen=True)
class Plan:
    """How long each point runs, and at which concurrencies invoke is measured."""

    seconds: float
    concurrencies: tuple[int, ...]
    streams: int = 64
    warm_up: float = 2.0
    paced_levels: tuple[int, ...] = (8, 16, 32, 64, 128, 256, 512)
    paced_seconds: float = 5.0
    long_sessions: int = 5
    long_turns: int = 200
    saver_threads: int = 10
    saver_turns: int = 30


FULL = Plan(seconds=10.0, concurrencies=(1, 8, 32, 64))
# Proves the harness works (its test runs it), nothing to compare: a second per point.
QUICK = Plan(
    seconds=1.0,
    concurrencies=(1, 8),
    streams=16,
    warm_up=0.5,
    paced_levels=(8,),
    paced_seconds=1.0,
    long_sessions=2,
    long_turns=10,
    saver_threads=2,
    saver_turns=3,
)
# The servers T3's paced streams compare, with their model paced (and, for T6, graphgate's
# exact cache on: a hit never reaches the model, so the pace does not weigh on it).
PACED = {
    "langserve_chain": {"BENCH_TOKENS_PER_SECOND": str(TOKENS_PER_SECOND)},
    "graphgate": {"DEMO_TOKENS_PER_SECOND": str(TOKENS_PER_SECOND), "CACHE_MODE": "exact"},
}


def streams(url: str, plan: Plan, requests_file: Path) -> dict[str, Any]:
    command = [
        *("taskset", "-c", str(LOAD_CORE), sys.executable, "-m", "bench.stream_load"),
        *("--url", url, "--concurrency", str(plan.streams), "--seconds", str(plan.seconds)),
        *("--requests", str(requests_file)),
    ]
    output = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, check=True, timeout=plan.seconds + 120
    )
    figures: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return figures


def settle(pid: int, quiet: float = 0.002, most: float = 15.0) -> None:
    """Wait until the server has finished what a phase left in flight (it spends under
    `quiet` CPU seconds in 0.1 s), so that no phase pays for the one before."""
    until = time.monotonic() + most
    while time.monotonic() < until:
        before = cpu_seconds(pid)
        time.sleep(0.1)  # sampling the CPU clock: there is no event to await
        if cpu_seconds(pid) - before < quiet:
            return


def measure(
    server: Server, redis_url: str, keys: list[str], plan: Plan, workdir: Path
) -> dict[str, Any]:
    began = time.perf_counter()
    process, base = start_server(server, redis_url, workdir)
    started_in = time.perf_counter() - began
    assert process.process is not None
    pid = process.process.pid
    try:
        rss_at_start = rss_mb(pid)
        invoke_url = f"{base}/chat/invoke"
        wrk.run(invoke_url, load(keys, "warm"), 8, plan.warm_up, workdir, LOAD_CORE)
        invoke = {}
        for concurrency in plan.concurrencies:
            settle(pid)
            cpu = cpu_seconds(pid)
            phase = load(keys, f"c{concurrency}-")
            figures = wrk.run(invoke_url, phase, concurrency, plan.seconds, workdir, LOAD_CORE)
            spent = cpu_seconds(pid) - cpu
            figures["requests_per_second"] = figures["requests"] / figures["seconds"]
            figures["cpu_ms_per_request"] = 1000 * spent / max(1, figures["requests"])
            invoke[str(concurrency)] = figures
        settle(pid)
        requests_file = workdir / "streams.json"
        requests_file.write_text(json.dumps(load(keys, "stream-")))
        stream = streams(f"{base}/chat/stream", plan, requests_file)
        figures = {
            "startup_seconds": started_in,
            "rss_mb_at_start": rss_at_start,
            "rss_mb_after_load": rss_mb(pid),
            "invoke": invoke,
            "streams": stream,
        }
        if server.name == "graphgate":
            settle(pid)
            figures["long_session"] = turn_costs(base, keys[0], plan.long_sessions, plan.long_turns)
        return figures
    finally:
        process.stop()


def measure_paced(
    server: Server, redis_url: str, keys: list[str], plan: Plan, workdir: Path
) -> dict[str, Any]:
    """T3's paced streams (and T6's cache hits, for graphgate) on the server with its model
    paced at `TOKENS_PER_SECOND`."""
    paced = dataclasses.replace(server, env={**server.env, **PACED[server.name]})
    process, base = start_server(paced, redis_url, workdir)
    assert process.process is not None
    pid = process.process.pid
    try:
        requests_file = workdir / "paced.json"
        requests_file.write_text(json.dumps(load(keys, "paced-")))
        figures: dict[str, Any] = {
            "streams": capacity(
                f"{base}/chat/stream",
                pid,
                plan.paced_levels,
                plan.paced_seconds,
                requests_file,
                LOAD_CORE,
                ROOT,
                settle,
            )
        }
        if server.name == "graphgate":
            settle(pid)
            figures["cache_hit_c1"] = cache_hits(f"{base}/chat/invoke", keys[0], plan, workdir)
        return figures
    finally:
        process.stop()


def cache_hits(url: str, key: str, plan: Plan, workdir: Path) -> dict[str, Any]:
    """One client asking one one-off question again and again: after the first, exact-cache
    hits."""
    ask = {
        "body": {"input": {"question": QUESTION}},
        "headers": {"Authorization": f"Bearer {key}"},
    }
    wrk.run(url, [ask], 1, plan.warm_up, workdir, LOAD_CORE)
    return wrk.run(url, [ask], 1, plan.seconds, workdir, LOAD_CORE)


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version()}


def commit() -> str:
    output = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return output.stdout.strip() or "unknown"


def run(plan: Plan, workdir: Path) -> dict[str, Any]:
    os.sched_setaffinity(0, {LOAD_CORE})  # this harness and what it starts, but the servers
    # Every server starts from compiled bytecode, as from an image (see the Dockerfile).
    for source in (*SOURCES, "bench"):
        compileall.compile_dir(ROOT / source, quiet=1)
    compileall.compile_file(ROOT / "server.py", quiet=1)
    keys = issue_keys(workdir / "keys")
    results: dict[str, Any] = {}
    with ExitStack() as stack:
        redis_url = start_redis(stack, workdir)
        store = stack.enter_context(redis.Redis.from_url(redis_url))
        for server in servers(workdir / "keys", keys):
            print(f"measuring {server.name}", file=sys.stderr, flush=True)
            store.flushall()
            results[server.name] = measure(server, redis_url, keys, plan, workdir)
        for server in servers(workdir / "keys", keys):
            if server.name in PACED:
                print(f"measuring {server.name}, paced", file=sys.stderr, flush=True)
                store.flushall()
                results[server.name]["paced"] = measure_paced(
                    server, redis_url, keys, plan, workdir
                )
        print("measuring the session savers", file=sys.stderr, flush=True)
        store.flushall()
        savers = saver_costs(redis_url, plan.saver_threads, plan.saver_turns)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": machine(),
        "plan": {
            "seconds_per_point": plan.seconds,
            "concurrencies": list(plan.concurrencies),
            "streams": plan.streams,
            "paced_levels": list(plan.paced_levels),
            "paced_tokens_per_second": TOKENS_PER_SECOND,
            "long_session": [plan.long_sessions, plan.long_turns],
        },
        "servers": results,
        "savers": savers,
        "targets": targets(results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="a second per point: the harness works"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--docs", action="store_true", help="write the table into docs/performance.md"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="graphgate-bench-") as workdir:
        result = run(QUICK if args.quick else FULL, Path(workdir))
    (args.out / "request_path.json").write_text(json.dumps(result, indent=2) + "\n")
    chart(result, args.out / "request_path.png")
    table = readme_table(result)
    (args.out / "request_path.md").write_text(table)
    if args.docs:
        DOCS_PAGE.write_text(replace_marked(DOCS_PAGE.read_text(), table))
    print(table)


if __name__ == "__main__":
    main()
