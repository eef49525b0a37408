"""What LangServe shows of a chat route: its input (a turn), its output (the AI message) and
the configurable fields a client may set (the session, the generation parameters)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, AnyMessage
from langchain_core.runnables import ConfigurableFieldSpec
from pydantic import (
    BaseModel,
    Field,
    RootModel,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

SESSION_ID = "session_id"
SESSION_SPEC = ConfigurableFieldSpec(
    id=SESSION_ID,
    annotation=str,
    name="Session ID",
    description="Keeps the conversation; omit it for a one-off turn.",
    default="",
    is_shared=True,
)
# The generation parameters a client may set per request (`graphs/model/params.py`).
PARAMETER_SPECS = [
    ConfigurableFieldSpec(
        id=name,
        annotation=annotation,
        name=name,
        description=description,
        default=None,
        is_shared=True,
    )
    for name, annotation, description in [
        ("temperature", float | None, "Sampling temperature, 0 to 2."),
        ("top_p", float | None, "Nucleus sampling, above 0 and at most 1."),
        ("max_tokens", int | None, "Most tokens of the reply, at most MAX_OUTPUT_TOKENS."),
        ("stop", list[str] | None, "Up to 4 sequences that end the reply."),
        ("seed", int | None, "Best-effort deterministic sampling (OpenAI-compatible models)."),
    ]
]


class ChatReply(RootModel[AIMessage]):
    """The output: the AI message, described so LangServe's chat playground accepts it."""

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        # The playground (written against pydantic 1) looks for an `anyOf` entry whose `type`
        # property lists "ai" in `enum`; pydantic 2 writes a single-value Literal as `const`.
        schema = super().model_json_schema(*args, **kwargs)
        message = schema["$defs"]["AIMessage"]
        message["properties"]["type"]["enum"] = ["ai"]
        return {"$defs": schema["$defs"], "anyOf": [message], "title": "ChatReply"}


def holds_serialized_object(value: Any) -> bool:
    """Whether a JSON value holds a dict with an `lc` key, at any depth."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if "lc" in item:
                return True
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


class ChatRequest(BaseModel):
    """A turn: `question`, and/or client-held `messages` whose last one is the human's turn;
    or, to a session whose chain stopped at an `interrupt` (the reply's
    `response_metadata.interrupts`), the answer it resumes with (`resume`)."""

    question: str = ""
    messages: list[AnyMessage] = Field(default_factory=list)
    # Not in the schema: LangServe's chat playground draws its chat only for an input whose
    # properties are a turn's.
    resume: SkipJsonSchema[Any] = None

    @model_validator(mode="after")
    def _resume_alone(self) -> ChatRequest:
        if self.resume is not None and (self.question or self.messages):
            raise ValueError("resume answers an interrupt: send it without question or messages")
        return self

    @field_validator("messages", mode="wrap")
    @classmethod
    def _malformed_message_is_invalid(
        cls, value: Any, handler: ValidatorFunctionWrapHandler
    ) -> Any:
        """langchain-core's message validators raise TypeError, AttributeError or KeyError on
        some malformed messages (`[0]`, `{"type": 0}`, `tool_calls: [0]`); pydantic passes those
        through as they are (a 500), so they become validation errors here. A dict with an `lc`
        key is LangChain's serialization format: stored in a checkpoint, the Redis saver would
        revive it as an object (and the session would fail to load), so clients may not send
        one."""
        if holds_serialized_object(value):
            raise ValueError("messages may not hold LangChain-serialized objects ('lc' keys)")
        try:
            return handler(value)
        except (TypeError, AttributeError, KeyError) as exc:
            raise ValueError(f"malformed message ({type(exc).__name__})") from None
