"""Usage arithmetic on a clock the test sets: minutes and days turn without waiting."""

from __future__ import annotations

from datetime import date

from graphs.limits.reservations import ledger_entry
from graphs.limits.usage import InMemoryUsageLedger, last_days
from graphs.limits.usage_counters import LedgerEntry
from tests.clock import NOV_26_2025, SetClock


async def test_the_tokens_of_a_minute_reset_when_the_minute_turns() -> None:
    clock = SetClock(NOV_26_2025 + 59)
    ledger = InMemoryUsageLedger(clock)
    await ledger.record("p", "m", LedgerEntry(total_tokens=30), route="chat")
    assert (await ledger.spending("p")).tokens_this_minute == 30
    clock.now += 1
    assert (await ledger.spending("p")).tokens_this_minute == 0


async def test_usage_is_kept_per_utc_day() -> None:
    clock = SetClock(NOV_26_2025 - 1)
    ledger = InMemoryUsageLedger(clock)
    await ledger.record("p", "m", LedgerEntry(total_tokens=5), route="chat")
    clock.now += 1
    await ledger.record("p", "m", LedgerEntry(total_tokens=7), route="chat")
    days = await ledger.days("p", last_days(2, clock))
    assert last_days(2, clock) == [date(2025, 11, 26), date(2025, 11, 25)]
    assert days["2025-11-26"]["total"]["total_tokens"] == 7
    assert days["2025-11-25"]["total"]["total_tokens"] == 5


def test_an_unfinished_turn_is_counted_as_partial() -> None:
    metadata = {
        "usage": {"input_tokens": 12, "output_tokens": 8, "total_tokens": 20},
        "cost_usd": 0.5,
        "cache_hit": False,
    }
    assert ledger_entry(metadata, partial=True) == LedgerEntry(
        input_tokens=12,
        output_tokens=8,
        total_tokens=20,
        cost_usd=0.5,
        partial_requests=1,
        partial_tokens=20,
    )
    assert ledger_entry(metadata).partial_requests == 0
