"""A reply's chunks as they stream, kept compact until they are merged.

A message chunk costs about 1.2 KB of memory and a token about 50 bytes: a 200-token reply kept
as its chunks held some 240 KB per open stream by its end, for the one merge at the end (the
reply, its usage when cut short, the cache). Here each run of plain text chunks (text only, one
id, the same metadata that merging keeps once) is kept as its strings, and every other chunk as
it came; merging them gives exactly what merging every chunk would, since text joins in order
and those keys merge to themselves.
"""

from __future__ import annotations

from langchain_core.messages import AIMessageChunk
from langchain_core.messages.ai import add_ai_message_chunks

# The response metadata keys that merging chunks keeps once when equal (LangChain's `merge_dicts`).
KEPT_ONCE = frozenset({"model_provider", "output_version"})

TextKey = tuple[str | None, tuple[tuple[str, object], ...]]


def text_key(chunk: AIMessageChunk) -> TextKey | None:
    """What a plain text chunk shares with its neighbours (its id and metadata); None for a
    chunk that carries anything else (tool calls, usage, other metadata, the last position)."""
    if (
        type(chunk.content) is not str
        or chunk.tool_call_chunks
        or chunk.usage_metadata
        or chunk.additional_kwargs
        or chunk.name is not None
        or chunk.chunk_position
        or not KEPT_ONCE.issuperset(chunk.response_metadata)
    ):
        return None
    return chunk.id, tuple(sorted(chunk.response_metadata.items()))


class ReplyChunks:
    """A reply's chunks in order, plain text runs kept as strings; `merged()` is the reply."""

    def __init__(self) -> None:
        self._kept: list[AIMessageChunk] = []
        self._texts: list[str] = []
        self._key: TextKey | None = None

    def append(self, chunk: AIMessageChunk) -> None:
        key = text_key(chunk)
        if key is None or key != self._key:
            self._close_text()
        if key is None:
            self._kept.append(chunk)
            return
        self._key = key
        self._texts.append(str(chunk.content))

    def __bool__(self) -> bool:
        return bool(self._kept or self._texts)

    def merged(self) -> AIMessageChunk:
        """The reply: every chunk appended, merged. There must be one."""
        self._close_text()
        first, *others = self._kept
        return add_ai_message_chunks(first, *others)

    def _close_text(self) -> None:
        if not self._texts or self._key is None:
            return
        chunk_id, metadata = self._key
        text = "".join(self._texts)
        self._kept.append(
            AIMessageChunk(content=text, id=chunk_id, response_metadata=dict(metadata))
        )
        self._texts, self._key = [], None
