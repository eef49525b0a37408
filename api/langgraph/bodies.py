"""The LangGraph API's request bodies, as `langgraph-sdk` sends them.

Unknown keys are ignored, as the LangGraph server ignores them (newer clients add some). A
known field whose value graphgate does not serve yet is refused by name with 422, never
silently ignored.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from langgraph.types import Command
from pydantic import BaseModel, ConfigDict, Field, field_validator

StreamModeName = Literal[
    "values",
    "updates",
    "messages",
    "messages-tuple",
    "custom",
    "events",
    "debug",
    "tasks",
    "checkpoints",
]
ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
NOT_YET = "is not served yet"


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


def refuse_set(value: Any, what: str) -> Any:
    """`value`, unless it asks for something graphgate does not serve yet."""
    if value not in (None, False, [], {}):
        raise ValueError(f"{what} {NOT_YET}")
    return value


class AssistantSearch(Body):
    graph_id: str | None = None
    name: str | None = None
    metadata: dict[str, Any] | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


class ThreadCreate(Body):
    thread_id: UUID | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"
    supersteps: list[Any] | None = None

    @field_validator("supersteps")
    @classmethod
    def _no_supersteps(cls, value: list[Any] | None) -> list[Any] | None:
        return refuse_set(value, "creating a thread with supersteps")  # type: ignore[no-any-return]


class ThreadPatch(Body):
    metadata: dict[str, Any] = Field(default_factory=dict)


class ThreadSearch(Body):
    metadata: dict[str, Any] | None = None
    ids: list[UUID] | None = None
    status: ThreadStatus | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at"] | None = None
    sort_order: Literal["asc", "desc"] | None = None


class StateAt(Body):
    checkpoint: dict[str, Any] = Field(default_factory=dict)
    subgraphs: bool = False


class HistoryRequest(Body):
    limit: int = Field(default=10, ge=1, le=1000)
    before: Any = None
    metadata: dict[str, Any] | None = None


class RunConfig(Body):
    tags: list[str] = Field(default_factory=list)
    recursion_limit: int | None = Field(default=None, ge=1, le=10_000)
    configurable: dict[str, Any] = Field(default_factory=dict)


class RunCommand(Body):
    """What resumes or steers a thread's run: the answer to its interrupt (`resume`), values to
    write first (`update`), the nodes to go to (`goto`)."""

    model_config = ConfigDict(extra="forbid")

    resume: Any = None
    update: Any = None
    goto: str | list[str] | None = None


class RunCreate(Body):
    """A run, stateful (`/threads/{id}/runs/...`) or stateless (`/runs/...`)."""

    assistant_id: str = Field(min_length=1, max_length=200)
    input: Any = None
    stream_mode: StreamModeName | list[StreamModeName] = "values"
    stream_subgraphs: bool = False
    config: RunConfig = Field(default_factory=RunConfig)
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    multitask_strategy: Literal["reject", "enqueue", "interrupt", "rollback"] | None = None
    if_not_exists: Literal["create", "reject"] | None = None
    on_disconnect: Literal["cancel", "continue"] | None = None
    on_completion: Literal["delete", "keep"] | None = None
    command: RunCommand | None = None
    stream_resumable: bool = False
    checkpoint: dict[str, Any] | None = None
    checkpoint_id: str | None = None
    webhook: str | None = None
    after_seconds: float | None = None
    feedback_keys: list[str] | None = None

    @field_validator(
        "webhook",
        "after_seconds",
        "feedback_keys",
    )
    @classmethod
    def _not_yet(cls, value: Any, info: Any) -> Any:
        return refuse_set(value, info.field_name)

    @property
    def from_checkpoint(self) -> str | None:
        """The kept checkpoint the run starts from (a branch), if not the latest."""
        wanted = self.checkpoint_id or (self.checkpoint or {}).get("checkpoint_id")
        return None if wanted is None else str(wanted)

    @property
    def graph_input(self) -> Any:
        """What the graph runs on: the input, or the command that resumes or steers it."""
        if self.command is None:
            return self.input
        return Command(**self.command.model_dump(exclude_none=True))

    @property
    def stream_modes(self) -> list[StreamModeName]:
        modes = [self.stream_mode] if isinstance(self.stream_mode, str) else self.stream_mode
        return list(dict.fromkeys(modes)) or ["values"]
