"""A clock for graphgate that moves only when the test moves it."""

from __future__ import annotations

from graphs.clock import Clock

NOV_26_2025 = 1_764_115_200.0  # 00:00:00 UTC


class SetClock(Clock):
    def __init__(self, now: float = NOV_26_2025 + 30) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now
