"""A turn whose client goes while persist writes its usage is still on the ledger: the model
was paid for."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import date

import pytest

from graphs.chat import build_chat_graph
from graphs.runtime.context import build_runtime
from graphs.runtime.settings import Settings
from graphs.runtime.usage import DayUsage, InMemoryUsageLedger, Spending, Usage


class GatedLedger:
    """The in-memory ledger behind a gate: `record` waits for `release` before it writes."""

    def __init__(self, ledger: InMemoryUsageLedger) -> None:
        self.ledger = ledger
        self.entered, self.release, self.recorded = (
            asyncio.Event(),
            asyncio.Event(),
            asyncio.Event(),
        )

    async def record(self, principal: str, model: str, usage: Usage) -> None:
        self.entered.set()
        await self.release.wait()
        await self.ledger.record(principal, model, usage)
        self.recorded.set()

    async def days(self, principal: str, days: list[date]) -> dict[str, DayUsage]:
        return await self.ledger.days(principal, days)

    async def spending(self, principal: str) -> Spending:
        return await self.ledger.spending(principal)


async def test_a_turn_cancelled_while_persist_writes_its_usage_is_still_recorded() -> None:
    settings = Settings(demo_tokens_per_second=0, llm_model="demo", rate_limit_max=100)
    runtime = build_runtime(settings, None)
    ledger = GatedLedger(InMemoryUsageLedger())
    graph = build_chat_graph(dataclasses.replace(runtime, usage=ledger))
    run = asyncio.create_task(
        graph.ainvoke({"question": "hello"}, {"configurable": {"principal": "p1"}})
    )
    await ledger.entered.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    ledger.release.set()
    await asyncio.wait_for(ledger.recorded.wait(), timeout=5)
    today = runtime.clock.today()
    recorded = await ledger.days("p1", [today])
    assert recorded[today.isoformat()]["total"]["requests"] == 1
