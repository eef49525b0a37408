"""Where graphgate's request path spends its CPU: graphgate as `make bench` runs it, wrk's
invoke load at c=64 on the other core, and py-spy sampling the worker. Prints the share of
samples by layer (each sample goes to the layer of its innermost frame that has one), the
functions with the largest share (inclusive and self), and writes py-spy's flame graph.

    make profile                          # 20 s; bench/results/profile.svg (not committed)
    .venv/bin/python -m bench.profile --seconds 10 --path /chat/stream
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from bench import wrk
from bench.comparison import (
    LOAD_CORE,
    graphgate_server,
    issue_keys,
    load,
    start_redis,
    start_server,
)
from bench.request_path import RESULTS
from scripts.processes import ROOT


def frame_name(frame: str) -> str:
    """`function (path/to/module.py:12)` as `function module.py:12`."""
    function, _, where = frame.partition(" (")
    return f"{function} {where.rsplit('/', 1)[-1].rstrip(')')}"


# A frame's layer: by its package when it is installed, by its top folder when it is ours.
PACKAGES = {
    "structlog": "logging",
    "prometheus_client": "metrics",
    "redis": "redis-py",
    "langgraph": "LangGraph (Pregel, channels, checkpoints)",
    "langserve": "LangServe",
    "pydantic": "pydantic",
    "pydantic_core": "pydantic",
    "fastapi": "FastAPI and Starlette",
    "starlette": "FastAPI and Starlette",
    "uvicorn": "uvicorn and httptools",
    "httptools": "uvicorn and httptools",
}
LANGCHAIN = {
    "callbacks": "LangChain callbacks and tracers",
    "tracers": "LangChain callbacks and tracers",
    "messages": "LangChain messages",
}
OURS = {
    "graphs": "graphgate's graphs/ (nodes, model, cache, limits, memory, store)",
    "api": "graphgate's api/ and auth/ (routes, admission, identity)",
    "auth": "graphgate's api/ and auth/ (routes, admission, identity)",
    "middleware": "graphgate's middleware/",
    "serving": "graphgate's serving/",
}
STANDARD = {"asyncio": "asyncio event loop", "logging": "logging"}


def frame_layer(frame: str) -> str | None:
    """The layer of `function (/full/path.py:12)`, if it has one."""
    path = frame.partition(" (")[2].rpartition(":")[0]
    if "/site-packages/" in path:
        package, _, inside = path.split("/site-packages/", 1)[1].partition("/")
        if package == "langchain_core":
            return LANGCHAIN.get(inside.partition("/")[0], "LangChain runnables, prompts, models")
        return PACKAGES.get(package)
    if path.startswith(f"{ROOT}/"):
        return OURS.get(path.removeprefix(f"{ROOT}/").partition("/")[0])
    return STANDARD.get(Path(path).parent.name)


def layer(frames: list[str]) -> str:
    """The layer of a sample: its innermost frame's that has one."""
    return next((found for f in reversed(frames) if (found := frame_layer(f))), "other")


def shares(raw: Path, top: int) -> str:
    """The `top` functions by inclusive and by self share of py-spy's collapsed stacks, in
    the samples where the worker was running (not its executors' idle threads)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        full = stack.split(";")
        frames = [frame_name(f) for f in full]
        if frames[-1].startswith("_worker thread.py"):
            continue  # an executor's thread waiting for work
        samples = int(count)
        total += samples
        layers[layer(full)] += samples
        for frame in set(frames):
            inclusive[frame] += samples
        own[frames[-1]] += samples
    lines = [f"{total} samples", "", "by layer:"]
    lines += [f"{100 * n / total:5.1f}%  {name}" for name, n in layers.most_common()]
    lines += ["", "inclusive:"]
    lines += [f"{100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)]
    lines += ["", "self:"]
    lines += [f"{100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--path", default="/chat/invoke")
    parser.add_argument("--top", type=int, default=60)
    args = parser.parse_args()
    os.sched_setaffinity(0, {LOAD_CORE})  # this process and py-spy stay off the server's core
    with tempfile.TemporaryDirectory(prefix="graphgate-profile-") as name, ExitStack() as stack:
        workdir = Path(name)
        keys = issue_keys(workdir / "keys")
        redis_url = start_redis(stack, workdir)
        graphgate = graphgate_server(workdir / "keys", keys)
        process, base = start_server(graphgate, redis_url, workdir)
        stack.callback(process.stop)
        assert process.process is not None
        requests = load(keys)
        url = f"{base}{args.path}"
        wrk.run(url, requests, 8, 2, workdir, LOAD_CORE)
        failures: list[Exception] = []

        def loaded() -> None:
            try:
                wrk.run(url, requests, args.concurrency, args.seconds + 4, workdir, LOAD_CORE)
            except (RuntimeError, subprocess.SubprocessError, OSError) as exc:  # raised below
                failures.append(exc)

        loader = threading.Thread(target=loaded)
        loader.start()
        raw, svg = RESULTS / "profile.txt", RESULTS / "profile.svg"
        for output, form in ((raw, "raw"), (svg, "flamegraph")):
            subprocess.run(
                [
                    *(str(Path(sys.executable).parent / "py-spy"), "record"),
                    *("-p", str(process.process.pid)),
                    *("-d", str(args.seconds // 2), "-f", form, "-o", str(output)),
                    "--full-filenames",  # the layers are told apart by their packages' paths
                ],
                check=True,
                capture_output=True,
            )
        loader.join()
        if failures:
            raise failures[0]
        print(shares(raw, args.top))
        print(f"\nflame graph: {svg}; py-spy's stacks: {raw}")


if __name__ == "__main__":
    main()
