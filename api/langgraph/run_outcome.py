"""What a LangGraph API run leaves behind when it ends: its record's status and its thread's
outcome (`interrupted` if it stopped at an interrupt, `error` with the failure's message, else
`idle`). A rolled-back run leaves no record. A stateless background run's thread is deleted when
it ends; its record stays, with the run's output, for `join`."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, replace
from typing import Any

from api.langgraph.run_admission import AdmittedRun
from api.langgraph.served import forget_thread
from api.langgraph.wire import dumps
from graphs.memory.thread_records import RunStatus, StoredRun, ThreadOutcome
from graphs.service import GraphService
from graphs.store.redis_client import REDIS_FAILURES

logger = logging.getLogger("graphgate")


@dataclass(frozen=True)
class RunOutcome:
    status: RunStatus
    rolled_back: bool
    interrupted: bool  # it stopped at an interrupt
    failure: dict[str, Any] | None
    output: Any = None  # kept in the record (a stateless background run's)


async def record_outcome(
    service: GraphService, admitted: AdmittedRun, outcome: RunOutcome
) -> StoredRun | None:
    """The run's record and its thread's outcome (a stateless run has neither); the record
    as written."""
    if admitted.thread is None:
        return None
    if outcome.rolled_back:
        await service.threads.delete_run(admitted.principal, admitted.record)
        return None
    ended: ThreadOutcome = "interrupted" if outcome.interrupted else "idle"
    error = None
    if outcome.failure is not None:
        ended, error = "error", str(outcome.failure["message"])
    # Read again: the thread's metadata may have been changed while the run ran.
    current = await service.threads.get(admitted.principal, admitted.thread.thread_id)
    thread = (current or admitted.thread).touched(outcome=ended, error=error)
    await service.threads.put(admitted.principal, thread)
    record = admitted.record.moved(outcome.status)
    if outcome.output is not None:
        record = replace(record, output=json.loads(dumps(outcome.output)))
    await service.threads.put_run(admitted.principal, record)
    return record


async def forget_run_thread(
    service: GraphService, admitted: AdmittedRun, final: StoredRun | None
) -> None:
    """Delete the run's thread; its record stays, with its output, for `join`."""
    if admitted.thread is None:
        return
    route, thread = admitted.route, admitted.thread.thread_id
    try:
        await asyncio.shield(forget_thread(service, route, admitted.principal, thread))
        if final is not None:
            await service.threads.put_run(admitted.principal, final)
    except REDIS_FAILURES as exc:  # its records expire after SESSION_TTL
        logger.warning("deleting a stateless run's thread failed: %s", type(exc).__name__)
