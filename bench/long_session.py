"""T5 of `make bench`: what a session's late turn costs beside its second. A few sessions are
played in lockstep, one turn of each after the other over one kept-alive connection, and each
turn's time is taken at the client; the history is trimmed to `MAX_HISTORY_MESSAGES`, so a
late turn should cost what an early one does plus a bounded history."""

from __future__ import annotations

import http.client
import json
import statistics
import time
from typing import Any
from urllib.parse import urlsplit

# Each figure is the median over the sessions of this many turns around the turn it names.
WINDOW = 5


def turn_times(base: str, key: str, sessions: int, turns: int) -> list[list[float]]:
    """Seconds each turn took: `[turn][session]`, turns from 1."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    times: list[list[float]] = []
    try:
        for turn in range(1, turns + 1):
            row = []
            for session in range(sessions):
                body = {
                    "input": {"question": f"turn {turn}: and then what happened next?"},
                    "config": {"configurable": {"session_id": f"long-{session}"}},
                }
                began = time.perf_counter()
                connection.request("POST", "/chat/invoke", json.dumps(body), headers)
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"turn {turn} of session {session}: {response.status}")
                row.append(time.perf_counter() - began)
            times.append(row)
    finally:
        connection.close()
    return times


def around(times: list[list[float]], turn: int) -> float:
    """The median time, in ms, of the `WINDOW` turns ending at `turn` over every session."""
    first = max(1, turn - WINDOW + 1)
    return 1000 * statistics.median(t for row in times[first - 1 : turn] for t in row)


def turn_costs(base: str, key: str, sessions: int, turns: int) -> dict[str, Any]:
    times = turn_times(base, key, sessions, turns)
    early = around(times, WINDOW + 1)  # turns 2..6
    late = around(times, turns)
    return {
        "sessions": sessions,
        "turns": turns,
        "early_turns_ms": early,
        "late_turns_ms": late,
        "late_over_early": late / early,
    }
