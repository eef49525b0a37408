"""The LangGraph API's resources as its clients read them: assistants, threads, thread states
and runs in the shapes of the LangGraph server (the `langgraph-sdk` types `Assistant`,
`Thread`, `ThreadState`, `Run`), and the JSON they are written in. Messages are written as
their `model_dump()`, as the LangGraph server writes them, so a client reads the state's
values as the team's graph holds them.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from langgraph.types import Interrupt, StateSnapshot
from pydantic import BaseModel

from graphs.graph_routes import GraphRoute
from graphs.memory.thread_records import StoredRun, StoredThread

# The LangGraph server names a graph's system assistant uuid5(this, graph_id): the same id
# here, beside the graph id itself, which graphgate also accepts as the assistant's id.
ASSISTANT_NAMESPACE = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def assistant_uuid(graph_id: str) -> str:
    return str(uuid.uuid5(ASSISTANT_NAMESPACE, graph_id))


def assistant(route: GraphRoute) -> dict[str, Any]:
    name = route.spec.name
    return {
        "assistant_id": name,
        "graph_id": name,
        "name": name,
        "description": None,
        "config": {},
        "context": {},
        "metadata": {"created_by": "system"},
        "version": 1,
        "created_at": iso(route.built_at),
        "updated_at": iso(route.built_at),
    }


def created_thread(stored: StoredThread) -> dict[str, Any]:
    """A thread as `POST /threads` answers it (no run yet: no values, no error)."""
    return {
        "thread_id": stored.thread_id,
        "created_at": iso(stored.created_at),
        "updated_at": iso(stored.updated_at),
        "state_updated_at": iso(stored.updated_at),
        "metadata": stored.metadata,
        "status": "idle",
        "values": None,
        "config": {},
    }


def thread(stored: StoredThread, status: str, values: Any) -> dict[str, Any]:
    return {
        **created_thread(stored),
        "status": status,
        "values": values,
        "interrupts": {},
        "error": stored.error,
    }


def run(stored: StoredRun) -> dict[str, Any]:
    return {
        "run_id": stored.run_id,
        "thread_id": stored.thread_id,
        "assistant_id": stored.assistant_id,
        "created_at": iso(stored.created_at),
        "updated_at": iso(stored.updated_at),
        "status": stored.status,
        "metadata": stored.metadata,
        "kwargs": stored.kwargs,
        "multitask_strategy": stored.multitask_strategy,
    }


EMPTY_STATE: dict[str, Any] = {
    "values": {},
    "next": [],
    "tasks": [],
    "metadata": None,
    "created_at": None,
    "checkpoint": None,
    "parent_checkpoint": None,
    "interrupts": [],
    "checkpoint_id": None,
    "parent_checkpoint_id": None,
}


def checkpoint(config: Any, public_thread: str) -> dict[str, Any] | None:
    """A checkpoint's address as clients use it: the public thread id, not graphgate's."""
    if not config:
        return None
    configurable = config.get("configurable", {})
    return {
        "thread_id": public_thread,
        "checkpoint_ns": configurable.get("checkpoint_ns", ""),
        "checkpoint_id": configurable.get("checkpoint_id"),
    }


def state(snapshot: StateSnapshot, public_thread: str) -> dict[str, Any]:
    if snapshot.config is None or not snapshot.config.get("configurable", {}).get("checkpoint_id"):
        return dict(EMPTY_STATE)
    current = checkpoint(snapshot.config, public_thread)
    parent = checkpoint(snapshot.parent_config, public_thread)
    return {
        "values": snapshot.values,
        "next": list(snapshot.next),
        "tasks": [
            {
                "id": task.id,
                "name": task.name,
                "path": list(task.path),
                "error": None if task.error is None else repr(task.error),
                "interrupts": list(task.interrupts),
                "checkpoint": None,
                "state": None,
                "result": task.result,
            }
            for task in snapshot.tasks
        ],
        "metadata": snapshot.metadata,
        "created_at": snapshot.created_at,
        "checkpoint": current,
        "parent_checkpoint": parent,
        "interrupts": list(snapshot.interrupts),
        "checkpoint_id": current["checkpoint_id"] if current else None,
        "parent_checkpoint_id": parent["checkpoint_id"] if parent else None,
    }


def plain(value: Any) -> Any:
    """What `json` cannot write itself, as the LangGraph server writes it."""
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, Interrupt):
        return {"id": value.id, "value": value.value}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, set | frozenset):
        return list(value)
    return repr(value)


def dumps(value: Any) -> bytes:
    return json.dumps(value, default=plain, separators=(",", ":"), ensure_ascii=False).encode()
