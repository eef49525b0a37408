"""`GET /usage`: the caller's tokens, requests and cost by UTC day and by model."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from api.caller import Caller
from graphs.runtime.usage import last_days
from graphs.service import GraphService

router = APIRouter(tags=["usage"])


@router.get("/usage")
async def read_usage(
    caller: Caller, request: Request, days: int = Query(default=7, ge=1, le=90)
) -> dict[str, Any]:
    service: GraphService = request.app.state.graphs
    runtime = service.chat.runtime
    by_day = await runtime.usage.days(caller.name, last_days(days, runtime.clock))
    return {
        "principal": caller.name,
        "days": [
            {"date": day, "total": usage.pop("total", {}), "models": usage}
            for day, usage in by_day.items()
        ],
    }
