"""S1 and S2 of `make bench` (issue #23): with the model paced at 20 tokens per second and
replies of 200 tokens (a 10 s stream), how many concurrent streams one worker carries, and what
each costs in CPU per token and in memory.

After a warm-up (one stream for each client of the first level, so that no level pays for
what a fresh server does once), concurrency steps up through the plan's levels (50, 100, ...
1,600). At each level the stream client (`bench/stream_load.py`, pinned to the load's core)
starts every client's first stream at a moment drawn uniformly over the ramp, so that the
server sees a steady arrival rate, and each client reopens a stream when its stream ends until
the level's time is up; the level ends when the last stream ends. Every client streams the
turns of a session of its own, whose question is long enough for the demo model's echo to fill
the reply.

A level holds when no stream failed, the delivered gap between tokens is at p99 <= 100 ms and
the time to first token at p99 <= 1 s; stepping stops at the first level that does not hold,
and the capacity is the last level that held (0 if none did). At each level: the server's CPU
seconds during the level (from /proc) over the tokens delivered, and its RSS read half-way
through the plateau, while every stream is open, less its idle RSS before the level, over the
streams.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.comparison import LOAD_CORE, QUESTION, load
from bench.stream_load import STREAM_TIMEOUT
from scripts.processes import ROOT, cpu_seconds, rss_mb

TOKENS_PER_SECOND = 20
GAP_P99_BOUND_MS = 100.0
TTFT_P99_BOUND_MS = 1000.0


@dataclass(frozen=True)
class Pacing:
    """The levels of concurrent streams stepped through and how each runs: every client starts
    within `ramp` seconds and reopens streams until `seconds`; replies have `tokens` tokens."""

    levels: tuple[int, ...]
    ramp: float
    seconds: float
    tokens: int

    def plateau_middle(self) -> float:
        """Seconds into a level when RSS is read: every client has opened its first stream
        (the ramp is over) and none has stopped reopening them (the level's time is not up)."""
        return (self.ramp + self.seconds) / 2


def question(words: int) -> str:
    """The bench's question repeated to `words` words: the demo model echoes it after a few
    words of its own, so that its reply reaches `words` tokens before it is cut there."""
    return " ".join(itertools.islice(itertools.cycle(QUESTION.split()), words))


def stream_client(url: str, streams: int, pacing: Pacing, requests_file: Path) -> list[str]:
    """The stream client's command line, on the load's core."""
    return [
        *("taskset", "-c", str(LOAD_CORE), sys.executable, "-m", "bench.stream_load"),
        *("--url", url, "--concurrency", str(streams), "--requests", str(requests_file)),
        *("--ramp", str(pacing.ramp), "--seconds", str(pacing.seconds)),
    ]


def run_client(command: list[str], pid: int, pacing: Pacing) -> tuple[dict[str, Any], float]:
    """Run the stream client: its figures, and the server's RSS in MB half-way through."""
    client = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    time.sleep(pacing.plateau_middle())  # a moment of the level, not an event to await
    loaded = rss_mb(pid)
    output, errors = client.communicate(timeout=pacing.seconds + STREAM_TIMEOUT + 60)
    if client.returncode != 0:
        raise RuntimeError(f"the stream client failed: {errors}")
    figures: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return figures, loaded


def held(figures: dict[str, Any]) -> bool:
    """No stream failed, and the gap and time-to-first-token p99s are within their bounds."""
    gap, ttft = figures["token_gap_p99_ms"], figures["ttft_p99_ms"]
    return (
        figures["failed"] == 0
        and gap is not None
        and gap <= GAP_P99_BOUND_MS
        and ttft is not None
        and ttft <= TTFT_P99_BOUND_MS
    )


def level(url: str, pid: int, streams: int, pacing: Pacing, requests_file: Path) -> dict[str, Any]:
    """`streams` concurrent clients for one level: the client's figures, whether the level
    held, the server's CPU microseconds per delivered token and KB of RSS per open stream."""
    idle, cpu = rss_mb(pid), cpu_seconds(pid)
    figures, loaded = run_client(stream_client(url, streams, pacing, requests_file), pid, pacing)
    spent = cpu_seconds(pid) - cpu
    tokens = figures["tokens"]
    return {
        "streams": streams,
        "held": held(figures),
        **figures,
        "cpu_us_per_token": 1e6 * spent / tokens if tokens else None,
        "kb_per_stream": 1024 * (loaded - idle) / streams,
    }


def requests_file(keys: list[str], phase: str, streams: int, pacing: Pacing, workdir: Path) -> Path:
    """A file of `streams` requests, one per client, each a session of its own for `phase`."""
    path = workdir / f"{phase}.json"
    path.write_text(json.dumps(load(keys, f"{phase}-", streams, question(pacing.tokens))))
    return path


def warm_up(url: str, keys: list[str], pacing: Pacing, workdir: Path) -> None:
    """One stream for each client of the first level, all opened within a second: a fresh
    server's first streams pay for what it does once (lazy imports and caches, its heap's
    first growth), which the first level's figures should not."""
    once = dataclasses.replace(pacing, ramp=min(pacing.ramp, 1.0), seconds=0.0)
    streams = pacing.levels[0]
    command = stream_client(url, streams, once, requests_file(keys, "warm", streams, once, workdir))
    subprocess.run(command, cwd=ROOT, capture_output=True, check=True, timeout=STREAM_TIMEOUT + 60)


def capacity(
    url: str,
    pid: int,
    keys: list[str],
    pacing: Pacing,
    workdir: Path,
    settle: Callable[[int], None],
) -> dict[str, Any]:
    """After a warm-up, each level in turn, on an idle server and with sessions of its own,
    until one does not hold: every level measured and the capacity, the last level that held
    (0 if none did)."""
    warm_up(url, keys, pacing, workdir)
    measured = []
    for streams in pacing.levels:
        settle(pid)
        sessions = requests_file(keys, f"paced{streams}", streams, pacing, workdir)
        result = level(url, pid, streams, pacing, sessions)
        measured.append(result)
        if not result["held"]:
            break
    carried = [m["streams"] for m in measured if m["held"]]
    return {
        "levels": measured,
        "capacity": carried[-1] if carried else 0,
        "all_levels_held": len(carried) == len(pacing.levels),
    }
