"""The time graphgate reads, passed in: a test sets it instead of waiting for a minute or a
day to turn."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime


class Clock:
    """Wall time (budgets count UTC minutes and days) and monotonic time (windows, TTLs)."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def today(self) -> date:
        return datetime.fromtimestamp(self.time(), UTC).date()

    def minute(self) -> int:
        """The current minute since the epoch, the unit of `TOKENS_PER_MINUTE`."""
        return int(self.time() // 60)


SYSTEM_CLOCK = Clock()
