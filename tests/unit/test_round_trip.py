"""A round trip of the in-memory twins (embedded mode): every queued call runs in order even
when one before it fails (a lock's release comes last and must never be skipped), each failure
raises where its reply is read, and nothing can be queued once the trip is sent."""

from __future__ import annotations

import pytest

from graphs.store.round_trip import RoundTrip


async def test_every_call_runs_when_one_before_it_fails_and_its_error_raises_on_reading() -> None:
    ran: list[str] = []

    async def refused() -> None:
        ran.append("usage")
        raise ValueError("the ledger refused")

    async def release() -> str:
        ran.append("release")
        return "released"

    trip = RoundTrip(None)
    usage, released = trip.local(refused), trip.local(release)
    await trip.send()
    assert ran == ["usage", "release"]
    assert released.value == "released"
    with pytest.raises(ValueError, match="refused"):
        _ = usage.value
    with pytest.raises(ValueError, match="refused"):
        trip.check()


async def test_a_failure_beside_the_vital_replies_is_only_logged_by_check_vital() -> None:
    async def fails() -> None:
        raise ValueError("beside")

    trip = RoundTrip(None)
    trip.local(fails)
    await trip.send()
    trip.check_vital()  # nothing vital failed


async def test_nothing_can_be_queued_once_the_trip_is_sent() -> None:
    async def nothing() -> None:
        return None

    trip = RoundTrip(None)
    await trip.send()
    assert trip.closed
    with pytest.raises(RuntimeError, match="already sent"):
        trip.local(nothing)
