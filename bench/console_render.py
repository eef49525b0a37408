"""`make bench-console`: the operator console over a large history, in Chromium. Redis gets 90
UTC days of usage of 1,000 principals (each on three models and two routes, every day) through
the same script a turn runs, then graphgate serves the console; an admin signs in and asks
for 90 days. Measured, each the median of `--runs`:

- the API: `GET /admin/usage?days=90` answered (its size too);
- the page: from the click on "Show" until its charts and its table of principals are drawn
  (a `requestAnimationFrame` after the last one, so layout and paint are in), the API call
  included.

    make bench-console          # about a minute; bench/results/console.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import sync_playwright

from auth.api_keys import KeyRecord, key_hash, key_line, new_key
from bench.comparison import Server, start_redis, start_server
from graphs.limits.usage_counters import COUNTERS
from graphs.limits.usage_overview import RedisUsageOverview, TurnUsage
from graphs.settings import Settings
from graphs.store.keys import RedisKeys
from graphs.store.redis_client import build_redis
from graphs.store.round_trip import RoundTrip
from scripts.processes import ROOT

RESULTS = ROOT / "bench" / "results" / "console.json"
PRINCIPALS, DAYS = 1_000, 90
MODELS = ("openai:gpt-4o-mini", "openai:gpt-4o", "anthropic:claude-sonnet")
ROUTES = ("chat", "summarize")
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
DRAWN = """() => new Promise(done => requestAnimationFrame(() => done(performance.now())))"""


async def seed(redis_url: str, prefix: str) -> int:
    """Every principal's turns of every day, recorded as turns record them; the turns made."""
    redis = build_redis(Settings(redis_url=redis_url))
    assert redis is not None
    overview = RedisUsageOverview(redis, RedisKeys(prefix), 120 * 86_400, COUNTERS)
    today, made = date.today(), 0
    try:
        for offset in range(DAYS):
            day = today - timedelta(days=offset)
            trip = RoundTrip(redis)
            for p in range(PRINCIPALS):
                for turn in range(len(MODELS)):
                    counters: dict[str, float] = {
                        "requests": 1,
                        "input_tokens": 200 + p,
                        "output_tokens": 50 + turn,
                    }
                    counters["total_tokens"] = counters["input_tokens"] + counters["output_tokens"]
                    counters["cost_usd"] = 0.0001 * (turn + 1)
                    route = ROUTES[(p + turn) % len(ROUTES)]
                    usage = TurnUsage(f"team-{p:04d}", MODELS[turn], route, counters)
                    overview.record_in(trip, day, usage)
                    made += 1
            await trip.send_checked()
            await overview.flush()
    finally:
        await redis.aclose()
    return made


def api_times(url: str, key: str, runs: int) -> tuple[list[float], int]:
    headers = {"Authorization": f"Bearer {key}"}
    times, size = [], 0
    with httpx.Client(timeout=60) as client:
        for _ in range(runs):
            began = time.perf_counter()
            answer = client.get(f"{url}/admin/usage", params={"days": DAYS}, headers=headers)
            times.append(time.perf_counter() - began)
            answer.raise_for_status()
            size = len(answer.content)
            assert answer.json()["principal_count"] == PRINCIPALS
    return times, size


def page_times(url: str, key: str, runs: int) -> list[float]:
    times = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{url}/console/")
        page.fill("#key", key)
        page.click("#sign-in-form button")
        page.wait_for_selector("#principals td")
        page.select_option("#usage-days", str(DAYS))
        for _ in range(runs):
            page.evaluate("document.getElementById('principals').replaceChildren()")
            began = page.evaluate("performance.now()")
            page.click("#usage-form button")
            page.wait_for_selector("#principals td", timeout=30_000)
            drawn = page.evaluate(DRAWN)
            times.append((drawn - began) / 1000)
        bars = page.locator("#chart-models rect").count()
        assert bars >= DAYS, bars  # every day drawn
        browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        workdir = Path(folder)
        redis_url = start_redis(stack, workdir)
        prefix = "graphgate:"
        began = time.perf_counter()
        turns = asyncio.run(seed(redis_url, prefix))
        print(f"seeded {turns:,} turns in {time.perf_counter() - began:.1f} s", file=sys.stderr)
        key = new_key()
        keys_file = workdir / "keys"
        keys_file.write_text(key_line(KeyRecord("operator", key_hash(key), admin=True)) + "\n")
        env = {"AUTH_MODE": "api_key", "API_KEYS_FILE": str(keys_file), "LLM_MODEL": "demo"}
        process, url = start_server(Server("graphgate", "server:app", env=env), redis_url, workdir)
        stack.callback(process.stop)
        api, size = api_times(url, key, args.runs)
        page = page_times(url, key, args.runs)
    result: dict[str, Any] = {
        "principals": PRINCIPALS,
        "days": DAYS,
        "turns_seeded": turns,
        "api_seconds_median": statistics.median(api),
        "api_seconds": api,
        "api_bytes": size,
        "page_seconds_median": statistics.median(page),
        "page_seconds": page,
        "bound_seconds": 1.0,
        "met": statistics.median(page) < 1.0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
