"""The offline demo model: streams a deterministic reply and reports token usage.

It lets `make run` work with no provider key; start-up says loudly that it is in use.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

DEMO_MODEL_NAME = "demo"


def demo_reply(messages: list[BaseMessage]) -> list[str]:
    """The reply's tokens: an echo of the last message, word by word."""
    last = messages[-1].text if messages else ""
    words = f"(demo model) You said: {last}".split()
    return [word if i == 0 else f" {word}" for i, word in enumerate(words)]


class DemoChatModel(BaseChatModel):
    """Echoes the last message, paced at `tokens_per_second` (0: no pacing)."""

    tokens_per_second: float = 30.0

    @property
    def _llm_type(self) -> str:
        return DEMO_MODEL_NAME

    def _usage(self, messages: list[BaseMessage], tokens: list[str]) -> UsageMetadata:
        prompt = sum(len(m.text.split()) + 3 for m in messages)
        return {
            "input_tokens": prompt,
            "output_tokens": len(tokens),
            "total_tokens": prompt + len(tokens),
        }

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tokens = demo_reply(messages)
        message = AIMessage(
            content="".join(tokens),
            usage_metadata=self._usage(messages, tokens),
            response_metadata={"model_name": DEMO_MODEL_NAME},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        yield from self._chunks(messages)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._chunks(messages):
            if self.tokens_per_second and chunk.message.content:
                await asyncio.sleep(1 / self.tokens_per_second)
            if run_manager and isinstance(chunk.message.content, str):
                await run_manager.on_llm_new_token(chunk.message.content, chunk=chunk)
            yield chunk

    def _chunks(self, messages: list[BaseMessage]) -> Iterator[ChatGenerationChunk]:
        tokens = demo_reply(messages)
        for token in tokens:
            yield ChatGenerationChunk(message=AIMessageChunk(content=token))
        final = AIMessageChunk(
            content="",
            usage_metadata=self._usage(messages, tokens),
            response_metadata={"model_name": DEMO_MODEL_NAME},
            chunk_position="last",
        )
        yield ChatGenerationChunk(message=final)
