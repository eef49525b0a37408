"""A turn the model has answered is on the ledger however its run ends: stopped while the
usage is written, or stopped before persist stores it. The model was paid for."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import date
from typing import Any

import pytest

from graphs.chat import build_chat_graph
from graphs.limits.usage import DayUsage, InMemoryUsageLedger, Spending
from graphs.limits.usage_counters import LedgerEntry
from graphs.limits.usage_overview import UsageOverview
from graphs.route_services import RouteServices, build_services
from graphs.settings import Settings
from graphs.store.round_trip import RoundTrip


class GatedLedger:
    """The in-memory ledger behind a gate: `record` waits for `release` before it writes."""

    def __init__(self, ledger: InMemoryUsageLedger) -> None:
        self.ledger = ledger
        self.entered, self.release, self.recorded = (
            asyncio.Event(),
            asyncio.Event(),
            asyncio.Event(),
        )

    @property
    def overview(self) -> UsageOverview:
        return self.ledger.overview

    async def record(
        self,
        principal: str,
        model: str,
        usage: LedgerEntry,
        end_user: str | None = None,
        *,
        route: str,
    ) -> None:
        self.entered.set()
        await self.release.wait()
        await self.ledger.record(principal, model, usage, end_user, route=route)
        self.recorded.set()

    def record_in(
        self,
        trip: RoundTrip,
        principal: str,
        model: str,
        usage: LedgerEntry,
        end_user: str | None = None,
        *,
        route: str,
    ) -> None:
        trip.local(lambda: self.record(principal, model, usage, end_user, route=route))

    async def days(self, principal: str, days: list[date]) -> dict[str, DayUsage]:
        return await self.ledger.days(principal, days)

    async def end_user_days(
        self, principal: str, end_user: str, days: list[date]
    ) -> dict[str, dict[str, float]]:
        return await self.ledger.end_user_days(principal, end_user, days)

    async def spending(self, principal: str) -> Spending:
        return await self.ledger.spending(principal)


def demo_services() -> RouteServices:
    settings = Settings(demo_tokens_per_second=0, llm_model="demo", rate_limit_max=100)
    return build_services(settings, None)


async def test_a_turn_cancelled_while_its_usage_is_written_is_still_recorded() -> None:
    services = demo_services()
    ledger = GatedLedger(InMemoryUsageLedger())
    graph = build_chat_graph(dataclasses.replace(services, usage=ledger))
    run = asyncio.create_task(
        graph.ainvoke({"question": "hello"}, {"configurable": {"principal": "p1"}})
    )
    await ledger.entered.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    ledger.release.set()
    await asyncio.wait_for(ledger.recorded.wait(), timeout=5)
    today = services.clock.today()
    recorded = await ledger.days("p1", [today])
    assert recorded[today.isoformat()]["total"]["requests"] == 1


async def test_a_run_stopped_before_persist_has_recorded_its_answered_turn() -> None:
    services = demo_services()
    graph = build_chat_graph(services)
    config: Any = {"configurable": {"principal": "p2"}}
    async for update in graph.astream({"question": "hello"}, config, stream_mode="updates"):
        if "llm" in update:
            break  # the run stops here: persist never runs
    today = services.clock.today()
    recorded = await services.usage.days("p2", [today])
    assert recorded[today.isoformat()]["total"]["requests"] == 1
