"""The offline demo model: streams a deterministic reply and reports token usage.

It lets `make run` work with no provider key; start-up says loudly that it is in use. Its reply
numbers the turn and quotes what the human said earlier, so the playground shows that sessions
remember; it honours `max_tokens` and `stop` as a real model would.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

DEMO_MODEL_NAME = "demo"


QUOTED_TURNS, QUOTE_CHARS = 3, 80
WORD = re.compile(r"\S+")


def demo_text(messages: Sequence[BaseMessage]) -> str:
    """'(demo model) Turn N. Earlier you said: "...". You said: <the question>'."""
    said = [m.text for m in messages if isinstance(m, HumanMessage)]
    last = said[-1] if said else (messages[-1].text if messages else "")
    text = f"(demo model) Turn {max(1, len(said))}."
    if earlier := said[:-1][-QUOTED_TURNS:]:
        quotes = ", ".join(f'"{words[:QUOTE_CHARS]}"' for words in earlier)
        text += f" Earlier you said: {quotes}."
    return f"{text} You said: {last}"


def demo_tokens(
    messages: Sequence[BaseMessage], stop: list[str] | None = None, max_tokens: int | None = None
) -> Iterator[str]:
    """The reply's tokens, word by word, each made as it is streamed (a provider's stream holds
    no list of the tokens to come: a list of 200 held 12 KB per open stream): cut before the
    first stop sequence, then to `max_tokens` words."""
    text = demo_text(messages)
    for sequence in stop or []:
        text = text.split(sequence, 1)[0]
    words = (match.group() for match in WORD.finditer(text))
    for index, word in enumerate(itertools.islice(words, max_tokens)):
        yield word if index == 0 else f" {word}"


def demo_reply(
    messages: Sequence[BaseMessage], stop: list[str] | None = None, max_tokens: int | None = None
) -> list[str]:
    """The whole reply's tokens (`demo_tokens`)."""
    return list(demo_tokens(messages, stop, max_tokens))


class DemoChatModel(BaseChatModel):
    """Echoes the conversation, paced at `tokens_per_second` (0: no pacing)."""

    tokens_per_second: float = 30.0

    @property
    def _llm_type(self) -> str:
        return DEMO_MODEL_NAME

    def _usage(self, messages: list[BaseMessage], output: int) -> UsageMetadata:
        prompt = sum(len(m.text.split()) + 3 for m in messages)
        return {"input_tokens": prompt, "output_tokens": output, "total_tokens": prompt + output}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._whole(messages, demo_reply(messages, stop, kwargs.get("max_tokens")))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """The whole reply, after the time its stream would take."""
        tokens = demo_reply(messages, stop, kwargs.get("max_tokens"))
        if self.tokens_per_second:
            await asyncio.sleep(len(tokens) / self.tokens_per_second)
        return self._whole(messages, tokens)

    def _whole(self, messages: list[BaseMessage], tokens: list[str]) -> ChatResult:
        message = AIMessage(
            content="".join(tokens),
            usage_metadata=self._usage(messages, len(tokens)),
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
        yield from self._chunks(demo_tokens(messages, stop, kwargs.get("max_tokens")), messages)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        tokens = demo_tokens(messages, stop, kwargs.get("max_tokens"))
        for chunk in self._chunks(tokens, messages):
            if self.tokens_per_second and chunk.message.content:
                await asyncio.sleep(1 / self.tokens_per_second)
            if run_manager and isinstance(chunk.message.content, str):
                await run_manager.on_llm_new_token(chunk.message.content, chunk=chunk)
            yield chunk

    def _chunks(
        self, tokens: Iterable[str], messages: list[BaseMessage]
    ) -> Iterator[ChatGenerationChunk]:
        sent = 0
        for token in tokens:
            sent += 1
            yield ChatGenerationChunk(message=AIMessageChunk(content=token))
        final = AIMessageChunk(
            content="",
            usage_metadata=self._usage(messages, sent),
            response_metadata={"model_name": DEMO_MODEL_NAME},
            chunk_position="last",
        )
        yield ChatGenerationChunk(message=final)
