"""The chat graph as the Runnable LangServe serves: question in, AI message out.

Serving the compiled graph directly would expose its whole state as input and output, stream
node updates instead of tokens, and drop `session_id` (LangServe forwards only configurable keys
a runnable declares). This adapter declares `session_id`, returns the reply, and streams the
model's chunks from the graph's custom stream.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, AnyMessage
from langchain_core.runnables import ConfigurableFieldSpec, Runnable, RunnableConfig
from pydantic import BaseModel, Field, RootModel

from graphs.chat import ChatGraph
from graphs.errors import GraphgateError
from graphs.nodes.limit import ANONYMOUS
from graphs.state import ChatInput
from middleware.sse_errors import StreamFailure

SESSION_ID = "session_id"
FAILURE = "stream_failure"


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


class ChatRequest(BaseModel):
    """A turn: `question`, and/or client-held `messages` whose last one is the human's turn."""

    question: str = ""
    messages: list[AnyMessage] = Field(default_factory=list)


def graph_config(config: RunnableConfig | None) -> RunnableConfig:
    """The run's config with a `thread_id`; without a session the turn gets a fresh one."""
    configurable = dict((config or {}).get("configurable", {}))
    if "thread_id" not in configurable:
        session = configurable.get(SESSION_ID) or uuid.uuid4().hex
        principal = configurable.get("principal") or ANONYMOUS
        configurable["thread_id"] = f"{principal}:{session}"
    return {**(config or {}), "configurable": configurable}


def graph_input(request: dict[str, Any]) -> ChatInput:
    return {"question": request.get("question") or "", "messages": request.get("messages") or []}


class ChatRunnable(Runnable[dict[str, Any], AIMessage]):
    def __init__(self, graph: Callable[[], ChatGraph], *, batch_max_concurrency: int) -> None:
        self._graph = graph
        self._batch_max_concurrency = batch_max_concurrency

    def get_output_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        return ChatReply

    @property
    def config_specs(self) -> list[ConfigurableFieldSpec]:
        return [
            ConfigurableFieldSpec(
                id=SESSION_ID,
                annotation=str,
                name="Session ID",
                description="Keeps the conversation; omit it for a one-off turn.",
                default="",
                is_shared=True,
            )
        ]

    def invoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AIMessage:
        raise NotImplementedError("The chat runnable is async: use ainvoke or astream.")

    async def ainvoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AIMessage:
        result = await self._graph().ainvoke(
            graph_input(input), graph_config(config), durability="exit"
        )
        reply: AIMessage = result["reply"]
        return reply

    async def abatch(
        self,
        inputs: list[dict[str, Any]],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[AIMessage]:
        """Run the turns of a batch at most `BATCH_MAX_CONCURRENCY` at a time, whatever the
        client asked for."""
        configs = config if isinstance(config, list) else [config or {}] * len(inputs)
        bounded: list[RunnableConfig] = [
            {**c, "max_concurrency": self._batch_max_concurrency} for c in configs
        ]
        return await super().abatch(inputs, bounded, return_exceptions=return_exceptions, **kwargs)

    async def astream(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[AIMessageChunk]:
        config = graph_config(config)
        try:
            async for chunk in self._graph().astream(
                graph_input(input), config, stream_mode="custom", durability="exit"
            ):
                if isinstance(chunk, AIMessageChunk):
                    yield chunk
        except GraphgateError as exc:
            failure = config["configurable"].get(FAILURE)
            if isinstance(failure, StreamFailure):
                failure.error = exc
            raise
