"""T5 of `make bench`: what a session's late turn costs beside an early one. Some sessions are
first played to just before their last turns; then the late turns of those sessions and the
early turns (2 to 6) of as many fresh sessions are taken in alternation, one after the other
over one kept-alive connection, each turn timed at the client. Measured side by side, the
two figures share the machine's moment: this VM's speed drifts by tens of per cent within
seconds, which a comparison of turns 2-6 with turns played twenty seconds later mistook for
a cost of long sessions (1.3-1.5x in two runs where the same server's CPU per turn showed no
trend over 400 turns). The history is trimmed to `MAX_HISTORY_MESSAGES`, so a late turn should
cost what an early one does, plus a bounded history."""

from __future__ import annotations

import http.client
import json
import statistics
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

# The early turns measured are 2..WINDOW+1; the late ones the last WINDOW of `turns`.
WINDOW = 5


class Sessions:
    """Turns of named sessions over one kept-alive connection, as one API key's principal."""

    def __init__(self, base: str, key: str) -> None:
        parts = urlsplit(base)
        self._connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=60
        )
        self._headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def turn(self, session: str, turn: int) -> float:
        """Play one turn; the seconds it took."""
        body = {
            "input": {"question": f"turn {turn}: and then what happened next?"},
            "config": {"configurable": {"session_id": session}},
        }
        began = time.perf_counter()
        self._connection.request("POST", "/chat/invoke", json.dumps(body), self._headers)
        response = self._connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"turn {turn} of session {session}: {response.status}")
        return time.perf_counter() - began

    def close(self) -> None:
        self._connection.close()


def turn_costs(base: str, key: str, sessions: int, turns: int) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    old = [f"long-{run}-{index}" for index in range(sessions)]
    new = [f"fresh-{run}-{index}" for index in range(sessions)]
    first_late = turns - WINDOW + 1
    player = Sessions(base, key)
    early: list[float] = []
    late: list[float] = []
    try:
        for session in old:
            for turn in range(1, first_late):
                player.turn(session, turn)
        for session in new:
            player.turn(session, 1)
        for step in range(WINDOW):
            for old_session, new_session in zip(old, new, strict=True):
                late.append(player.turn(old_session, first_late + step))
                early.append(player.turn(new_session, 2 + step))
    finally:
        player.close()
    early_ms = 1000 * statistics.median(early)
    late_ms = 1000 * statistics.median(late)
    return {
        "sessions": sessions,
        "turns": turns,
        "early_turns_ms": early_ms,
        "late_turns_ms": late_ms,
        "late_over_early": late_ms / early_ms,
    }
