"""`make bench`: what graphgate's request path costs, beside five reference servers measured with
the same load in the same run (`bench/anchors/`): a bare Starlette endpoint, a LangServe chain,
a tutorial-style FastAPI app and a naive LangServe + LangGraph graph, with the stock Redis saver
and without a checkpointer (the stateless floor). Every server is one uvicorn worker pinned to
core 1; wrk, the stream client, Redis and this harness run on core 0. graphgate runs its whole
pipeline: API keys, rate limit, token and spend budgets, usage ledger, metrics, the JSON access
line at INFO, sessions in Redis. The targets are those of issue #23, each a ratio within one run
(`bench/request_path_report.py`).

    make bench                                    # 8-11 minutes; bench/results/ and docs/
    .venv/bin/python -m bench.request_path --quick --out /tmp/bench   # about a minute

The phases, each on a server started for it:
- invoke (T1, T2, T4): every server with the same instant in-process model and a 20-token
  reply, at c=1 and c=64; its start-up time and RSS at start; then T5's sessions of 200 turns
  on graphgate (`bench/long_session.py`);
- paced streams (S1, S2): the bare endpoint, the LangServe chain and graphgate again, their
  model paced at 20 tokens/s with 200-token replies, stepped up through levels of concurrent
  streams until one does not hold (`bench/paced_streams.py`);
- exact-cache hits (T2): graphgate again with `CACHE_MODE=exact`, one client repeating one
  question;
- tracing on: graphgate's invoke again with OpenTelemetry exporting every span and metric to an
  OTLP sink on loopback (`bench/otlp_sink.py`), beside its invoke with tracing off;
- the session savers' CPU per turn, in process (`bench/savers.py`).

The invoke load: 1,000 sessions of 100 users (an API key each), each request the next turn of
one; every phase starts sessions of its own, and waits until the server is idle. CPU per
request is the server's CPU time during the phase over the requests wrk completed: the
requests still in flight at its end (up to c) make it a few % high.
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
from collections.abc import Callable
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
    graphgate_server,
    issue_keys,
    load,
    servers,
    start_redis,
    start_server,
)
from bench.long_session import turn_costs
from bench.otlp_sink import otlp_sink
from bench.paced_streams import (
    GAP_P99_BOUND_MS,
    TOKENS_PER_SECOND,
    TTFT_P99_BOUND_MS,
    Pacing,
    capacity,
)
from bench.request_path_report import DOCS_PAGE, chart, readme_table, replace_marked, targets
from bench.savers import saver_costs
from bench.stream_load import raise_open_files
from scripts.processes import ROOT, cpu_seconds, rss_mb

RESULTS = ROOT / "bench" / "results"
SOURCES = ("graphs", "api", "middleware", "auth", "serving")
# The servers S1 steps paced streams up on: graphgate and its two floors.
STREAMED = ("bare", "langserve_chain", "graphgate")


@dataclass(frozen=True)
class Plan:
    """How long each invoke point runs and at which concurrencies, how the paced streams
    step up, and the sizes of the session and saver measurements."""

    seconds: float
    concurrencies: tuple[int, ...]
    paced: Pacing
    warm_up: float = 2.0
    long_sessions: int = 5
    long_turns: int = 200
    saver_threads: int = 10
    saver_turns: int = 30


FULL = Plan(
    seconds=10.0,
    concurrencies=(1, 64),
    paced=Pacing(levels=(50, 100, 200, 400, 800, 1600), ramp=5.0, seconds=12.0, tokens=200),
)
# Proves the harness works (its test runs it), nothing to compare: a second per point, one
# paced level of a few 1 s streams.
QUICK = Plan(
    seconds=1.0,
    concurrencies=(1, 8),
    paced=Pacing(levels=(8,), ramp=0.5, seconds=1.0, tokens=20),
    warm_up=0.5,
    long_sessions=2,
    long_turns=10,
    saver_threads=2,
    saver_turns=3,
)


# A phase of the run: what it measures on one server it starts.
Measure = Callable[[Server, str, list[str], Plan, Path], dict[str, Any]]


def paced_env(name: str, pacing: Pacing) -> dict[str, str]:
    """What paces `name`'s model at `TOKENS_PER_SECOND` with replies of `pacing.tokens`.
    graphgate's process slots (`MAX_CONCURRENCY`) are raised above the highest level, so
    that what S1 finds is what the worker carries, not the cap it was configured with."""
    pace, tokens = str(TOKENS_PER_SECOND), str(pacing.tokens)
    if name == "graphgate":
        slots = str(2 * max(pacing.levels))
        return {
            "DEMO_TOKENS_PER_SECOND": pace,
            "MAX_OUTPUT_TOKENS": tokens,
            "MAX_CONCURRENCY": slots,
        }
    return {"BENCH_TOKENS_PER_SECOND": pace, "BENCH_REPLY_TOKENS": tokens}


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
    """Start-up, memory and invoke at each concurrency (and T5's long sessions, for
    graphgate) on the server with its instant model."""
    return measure_invoke(server, redis_url, keys, plan, workdir, long_session=True)


def measure_invoke(
    server: Server,
    redis_url: str,
    keys: list[str],
    plan: Plan,
    workdir: Path,
    *,
    long_session: bool = False,
) -> dict[str, Any]:
    """Start-up, memory and invoke at each concurrency on the server with its instant model;
    with `long_session`, T5's long sessions for graphgate."""
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
        figures = {
            "startup_seconds": started_in,
            "rss_mb_at_start": rss_at_start,
            "rss_mb_after_load": rss_mb(pid),
            "invoke": invoke,
        }
        if long_session and server.name == "graphgate":
            settle(pid)
            figures["long_session"] = turn_costs(base, keys[0], plan.long_sessions, plan.long_turns)
        return figures
    finally:
        process.stop()


def measure_paced(
    server: Server, redis_url: str, keys: list[str], plan: Plan, workdir: Path
) -> dict[str, Any]:
    """S1's levels of paced streams, with S2's CPU per token and memory per stream, on the
    server started again with its model paced."""
    paced = dataclasses.replace(server, env={**server.env, **paced_env(server.name, plan.paced)})
    process, base = start_server(paced, redis_url, workdir)
    assert process.process is not None
    try:
        url, pid = f"{base}/chat/stream", process.process.pid
        return capacity(url, pid, keys, plan.paced, workdir, settle)
    finally:
        process.stop()


def measure_cache_hits(
    server: Server, redis_url: str, keys: list[str], plan: Plan, workdir: Path
) -> dict[str, Any]:
    """T2's exact-cache hits: graphgate started again with `CACHE_MODE=exact`."""
    cached = dataclasses.replace(server, env={**server.env, "CACHE_MODE": "exact"})
    process, base = start_server(cached, redis_url, workdir)
    try:
        return cache_hits(f"{base}/chat/invoke", keys[0], plan, workdir)
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
    raise_open_files()  # inherited by the servers: a level of 1,600 streams holds 1,600 sockets
    # Every server starts from compiled bytecode, as from an image (see the Dockerfile).
    for source in (*SOURCES, "bench"):
        compileall.compile_dir(ROOT / source, quiet=1)
    compileall.compile_file(ROOT / "server.py", quiet=1)
    keys = issue_keys(workdir / "keys")
    results: dict[str, Any] = {}
    with ExitStack() as stack:
        redis_url = start_redis(stack, workdir)
        store = stack.enter_context(redis.Redis.from_url(redis_url))

        def phase(label: str, measured: Measure, server: Server) -> dict[str, Any]:
            print(f"measuring {server.name}{label}", file=sys.stderr, flush=True)
            store.flushall()
            return measured(server, redis_url, keys, plan, workdir)

        every = servers(workdir / "keys", keys)
        for server in every:
            results[server.name] = phase("", measure, server)
        for server in every:
            if server.name in STREAMED:
                results[server.name]["paced"] = phase(", paced streams", measure_paced, server)
        graphgate = graphgate_server(workdir / "keys", keys)
        results["graphgate"]["cache_hit_c1"] = phase(", exact cache", measure_cache_hits, graphgate)
        endpoint = stack.enter_context(otlp_sink())
        traced = dataclasses.replace(
            graphgate, env={**graphgate.env, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
        )
        results["graphgate"]["traced"] = phase(", traced", measure_invoke, traced)
        print("measuring the session savers", file=sys.stderr, flush=True)
        store.flushall()
        savers = saver_costs(redis_url, plan.saver_threads, plan.saver_turns)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": machine(),
        "plan": plan_figures(plan),
        "servers": results,
        "savers": savers,
        "targets": targets(results),
    }


def plan_figures(plan: Plan) -> dict[str, Any]:
    """The plan as the JSON records it."""
    return {
        "seconds_per_point": plan.seconds,
        "concurrencies": list(plan.concurrencies),
        "paced": {
            "levels": list(plan.paced.levels),
            "ramp_seconds": plan.paced.ramp,
            "seconds": plan.paced.seconds,
            "reply_tokens": plan.paced.tokens,
            "tokens_per_second": TOKENS_PER_SECOND,
            "gap_p99_bound_ms": GAP_P99_BOUND_MS,
            "ttft_p99_bound_ms": TTFT_P99_BOUND_MS,
        },
        "long_session": [plan.long_sessions, plan.long_turns],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="a second per point, one paced level: it works"
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
