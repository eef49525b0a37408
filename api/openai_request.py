"""A `/v1/chat/completions` request, read with the `openai` package's own types: the messages
become LangChain messages (`convert_to_messages`), the generation parameters and tools travel
with the turn, and every field graphgate cannot honour is refused by name (400
`unsupported_parameter`) instead of being ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from langchain_core.messages import BaseMessage, convert_to_messages
from openai.types.chat import (
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageParam,
    ChatCompletionToolChoiceOptionParam,
)
from openai.types.chat.completion_create_params import CompletionCreateParamsBase, ResponseFormat
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from api.chat_schema import holds_serialized_object
from api.validation_errors import describe
from graphs.admission import Ask, AskedTurn
from graphs.errors import UnsupportedParameter, ValidationFailed
from graphs.model.params import ModelParams, read_params
from graphs.model.turn import ToolRequest
from graphs.route_services import RouteServices

MODEL_ID = "graphgate"
# OpenAI's documented bound for `safety_identifier`, the field that replaces `user`.
END_USER_MAX_CHARS = 128
OPENAI_FIELDS = frozenset(CompletionCreateParamsBase.__annotations__) | {"stream"}
# Fields accepted only at the value that asks for nothing (what an SDK may send by default).
NO_OP_VALUES: dict[str, tuple[Any, ...]] = {
    "n": (1,),
    "logprobs": (False,),
    "top_logprobs": (0,),
    "frequency_penalty": (0, 0.0),
    "presence_penalty": (0, 0.0),
    "modalities": (["text"],),
    "store": (False,),
    "logit_bias": ({},),
    "service_tier": ("auto", "default"),
}

MESSAGE = TypeAdapter(ChatCompletionMessageParam)
TOOLS = TypeAdapter(list[ChatCompletionFunctionToolParam])
TOOL_CHOICE = TypeAdapter(ChatCompletionToolChoiceOptionParam)
RESPONSE_FORMAT = TypeAdapter(ResponseFormat)


class StreamOptions(BaseModel):
    include_usage: bool = False


class CompletionRequest(BaseModel):
    """The fields graphgate reads; any other field is checked by `refuse_unsupported`."""

    model_config = ConfigDict(extra="allow")

    model: str = MODEL_ID
    messages: list[dict[str, Any]] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    # The caller's end user (OpenAI's meaning): logged, never a session, any characters.
    user: str | None = Field(default=None, max_length=END_USER_MAX_CHARS)
    safety_identifier: str | None = Field(default=None, max_length=END_USER_MAX_CHARS)

    @property
    def end_user(self) -> str | None:
        """Who the caller serves: `safety_identifier`, OpenAI's newer name for it, or `user`."""
        return self.safety_identifier or self.user

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None


def refuse_unsupported(body: CompletionRequest) -> None:
    """400 `unsupported_parameter` for the first field graphgate would otherwise ignore."""
    for name, value in (body.model_extra or {}).items():
        if value is None or value in NO_OP_VALUES.get(name, ()):
            continue
        if name in NO_OP_VALUES or name in OPENAI_FIELDS:
            raise UnsupportedParameter(name, "graphgate cannot honour it; leave it out")
        raise UnsupportedParameter(name, "it is not a field of OpenAI's chat completions API")


def materialized(value: Any) -> Any:
    """A validated value with pydantic's lazy iterators (OpenAI's types say `Iterable`) read
    into lists, so that their errors surface now."""
    if isinstance(value, dict):
        return {key: materialized(item) for key, item in value.items()}
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        return value
    return [materialized(item) for item in value]


def conversation(body: CompletionRequest) -> list[BaseMessage]:
    """The messages as LangChain messages, each first checked against OpenAI's message types."""
    if holds_serialized_object(body.messages):
        raise ValidationFailed("messages may not hold LangChain-serialized objects ('lc' keys)")
    try:
        checked = [materialized(MESSAGE.validate_python(message)) for message in body.messages]
    except ValidationError as exc:
        raise ValidationFailed(describe(exc.errors())) from None
    try:
        return convert_to_messages(checked)
    except (ValueError, TypeError, KeyError, NotImplementedError) as exc:
        raise ValidationFailed(f"messages: {exc}") from None


def generation_params(body: CompletionRequest, max_output_tokens: int) -> ModelParams:
    values = body.model_dump(include={"temperature", "top_p", "stop", "seed"})
    values["max_tokens"] = body.max_completion_tokens or body.max_tokens
    return read_params(values, max_output_tokens)


def tool_request(body: CompletionRequest) -> ToolRequest:
    """The tools and response format, checked against OpenAI's types; forwarded as given."""
    response_format = body.response_format
    try:
        tools = [dict(tool) for tool in TOOLS.validate_python(body.tools or [])]
        if body.tool_choice is not None:
            TOOL_CHOICE.validate_python(body.tool_choice)
        if response_format is not None:
            RESPONSE_FORMAT.validate_python(response_format)
    except ValidationError as exc:
        raise ValidationFailed(describe(exc.errors())) from None
    for name in ("tool_choice", "parallel_tool_calls"):
        if getattr(body, name) is not None and not tools:
            raise ValidationFailed(f"`{name}` needs `tools`.")
    if response_format is not None and response_format.get("type") == "text":
        response_format = None
    return ToolRequest(
        tools=tuple(tools),
        tool_choice=body.tool_choice,
        parallel_tool_calls=body.parallel_tool_calls,
        response_format=response_format,
    )


def completion_ask(body: CompletionRequest, session: str | None, services: RouteServices) -> Ask:
    """What a chat completion asks admission for: one turn (the conversation, or with a session
    the new messages), its parameters, tools and end user."""
    params = generation_params(body, services.settings.max_output_tokens)
    turn = AskedTurn("", conversation(body), session or None, params)
    return Ask([turn], tool_request(body), body.end_user)
