"""`make soak`'s harness, run for half a minute so that it cannot rot: it starts the stack,
sends the whole mix and writes its figures and chart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scripts.processes import ROOT, child_env


def test_a_short_soak_sends_the_whole_mix_and_writes_its_results(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bench.soak", "--minutes", "0.5", "--rate", "20"]
    finished = subprocess.run(
        [*command, "--out", str(tmp_path)],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert finished.returncode in (0, 1), finished.stderr[-3000:]
    result = json.loads((tmp_path / "soak.json").read_text())
    seen = set(result["by_kind_and_status"])
    for expected in ("session_turn 200", "stream 200", "batch 200", "cache_hit 200"):
        assert expected in seen, seen
    assert "too_long 400" in seen, seen
    assert "rate_limited 429" in seen, seen
    assert len(result["samples"]) >= 2
    assert set(result["criteria"]) == {
        "rss_growth_after_warm_up",
        "redis_keys",
        "p99_last_minute_over_first",
    }
    assert (tmp_path / "soak.png").stat().st_size > 10_000
