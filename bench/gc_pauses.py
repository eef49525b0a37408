"""The garbage collector's pauses under invoke turns: graphgate in process on the bench's
configuration (Redis, API keys, sessions; the access line off, or it would drown the figures),
httpx's ASGI transport, each collection timed with `gc.callbacks`. `--unfrozen` undoes the app's
freeze of its start-up heap (`serving/startup_heap.py`) before the turns, for the comparison:

    .venv/bin/python -m bench.gc_pauses --turns 4900
    .venv/bin/python -m bench.gc_pauses --turns 4900 --unfrozen
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from bench.comparison import graphgate_server, issue_keys, load, start_redis


class Pauses:
    """Every collection's count and longest pause by generation, and their total."""

    def __init__(self) -> None:
        self.count, self.longest, self.total, self.started = [0, 0, 0], [0.0, 0.0, 0.0], 0.0, 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
            return
        spent, generation = time.perf_counter() - self.started, info["generation"]
        self.count[generation] += 1
        self.longest[generation] = max(self.longest[generation], spent)
        self.total += spent


async def play(turns: int, unfrozen: bool, keys: list[str]) -> dict[str, Any]:
    from server import create_app  # after the environment is set

    app = create_app()
    requests = load(keys)
    pauses = Pauses()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

            async def turn(i: int) -> None:
                request = requests[i % len(requests)]
                answer = await client.post(
                    "/chat/invoke", json=request["body"], headers=request["headers"]
                )
                answer.raise_for_status()

            for i in range(100):  # warm-up: what the first turns build is in place
                await turn(i)
            if unfrozen:
                gc.unfreeze()
            gc.callbacks.append(pauses)
            try:
                for i in range(100, 100 + turns):
                    await turn(i)
            finally:
                gc.callbacks.remove(pauses)
    return {
        "turns": turns,
        "frozen": not unfrozen,
        "collections_by_generation": pauses.count,
        "longest_pause_ms_by_generation": [round(1000 * s, 1) for s in pauses.longest],
        "collector_ms_per_turn": round(1000 * pauses.total / turns, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=4900)
    parser.add_argument("--unfrozen", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="graphgate-gc-") as name, ExitStack() as stack:
        workdir = Path(name)
        keys = issue_keys(workdir / "keys")
        graphgate = graphgate_server(workdir / "keys", keys)
        os.environ.update(graphgate.env, REDIS_URL=start_redis(stack, workdir), LOG_LEVEL="WARNING")
        print(json.dumps(asyncio.run(play(args.turns, args.unfrozen, keys))))


if __name__ == "__main__":
    main()
