"""The soak's chart: each worker's RSS, Redis's key count and the p99 latency over time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: write the file only

import matplotlib.pyplot as plt


def draw(points: list[dict[str, Any]], path: Path) -> None:
    times = [p["at"] / 60 for p in points]
    figure, (rss, keys, latency) = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
    for pid in points[0]["rss_mb"]:
        rss.plot(times, [p["rss_mb"].get(pid) for p in points], label=f"worker {pid}")
    rss.set_ylabel("RSS (MB)")
    rss.legend(loc="lower right")
    keys.plot(times, [p["redis_keys"] for p in points], color="tab:green")
    keys.set_ylabel("Redis keys")
    latency.plot(times, [(p["p99_seconds"] or 0) * 1000 for p in points], color="tab:red")
    latency.set_ylabel("p99 per 10 s (ms)")
    latency.set_xlabel("minutes")
    for axis in (rss, keys, latency):
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
    figure.suptitle("graphgate soak: gunicorn 2 workers, Redis, mixed traffic")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
