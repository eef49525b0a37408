"""T3's second half in `make bench`: with the model paced at 20 tokens per second, the most
concurrent streams one worker carries while the gap between delivered tokens stays at p99 <=
100 ms, and the memory each open stream costs. Concurrency steps up until a level fails (a
late p99 or a failed stream); RSS is read half-way through each level, while every stream is
open, against the idle RSS before it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from scripts.processes import rss_mb

TOKENS_PER_SECOND = 20
GAP_P99_BOUND_MS = 100.0


def level(
    url: str, pid: int, streams: int, seconds: float, requests_file: Path, core: int, cwd: Path
) -> dict[str, Any]:
    """`streams` concurrent streams for `seconds`: the delivered gap p99 and KB of RSS each."""
    idle = rss_mb(pid)
    command = [
        *("taskset", "-c", str(core), sys.executable, "-m", "bench.stream_load"),
        *("--url", url, "--concurrency", str(streams), "--seconds", str(seconds)),
        *("--requests", str(requests_file)),
    ]
    loaded: list[float] = []
    halfway = threading.Timer(seconds / 2, lambda: loaded.append(rss_mb(pid)))
    halfway.start()
    output = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, check=True, timeout=seconds + 120
    )
    halfway.join()
    figures: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    gap = figures["token_gap_p99_ms"]
    return {
        "streams": streams,
        "token_gap_p99_ms": gap,
        "failed": figures["failed"],
        "kb_per_stream": 1024 * (loaded[0] - idle) / streams,
        "held": figures["failed"] == 0 and gap is not None and gap <= GAP_P99_BOUND_MS,
    }


def capacity(
    url: str,
    pid: int,
    levels: tuple[int, ...],
    seconds: float,
    requests_file: Path,
    core: int,
    cwd: Path,
    settle: Any,
) -> dict[str, Any]:
    """Each level in turn until one does not hold; the capacity is the last that held (0 if
    none did), with its memory per stream (the first level's when none held)."""
    measured = []
    for streams in levels:
        settle(pid)
        result = level(url, pid, streams, seconds, requests_file, core, cwd)
        measured.append(result)
        if not result["held"]:
            break
    held = [m for m in measured if m["held"]]
    return {
        "levels": measured,
        "capacity": held[-1]["streams"] if held else 0,
        "kb_per_stream": (held or measured)[-1]["kb_per_stream"],
        "all_levels_held": len(held) == len(levels),
    }
