"""A reply kept compact while it streams (`graphs/model/reply_chunks.py`) merges to exactly what
merging every chunk gives, whatever the chunks carry."""

from __future__ import annotations

import tracemalloc
from typing import Any

from langchain_core.messages import AIMessageChunk
from langchain_core.messages.ai import add_ai_message_chunks

from graphs.model.reply_chunks import ReplyChunks


def compact(chunks: list[AIMessageChunk]) -> ReplyChunks:
    kept = ReplyChunks()
    for chunk in chunks:
        kept.append(chunk)
    return kept


def openai_like(text: str, **fields: Any) -> AIMessageChunk:
    """A chunk as langchain-openai streams them: its id and provider on every one."""
    fields["response_metadata"] = {
        "model_provider": "openai",
        **fields.get("response_metadata", {}),
    }
    return AIMessageChunk(content=text, id="chatcmpl-1", **fields)


def test_text_tool_calls_usage_and_metadata_merge_as_every_chunk_would() -> None:
    chunks = [
        openai_like("", additional_kwargs={"refusal": None}),
        openai_like("Let"),
        openai_like(" me"),
        openai_like(" look", response_metadata={"model_provider": "openai", "model_name": "m"}),
        openai_like(" it up."),
        openai_like(
            "", tool_call_chunks=[{"name": "search", "args": '{"q"', "id": "c1", "index": 0}]
        ),
        openai_like(
            "", tool_call_chunks=[{"name": None, "args": ': "sea"}', "id": None, "index": 0}]
        ),
        AIMessageChunk(content=" Done", id="lc_run--x"),
        AIMessageChunk(
            content="", usage_metadata={"input_tokens": 3, "output_tokens": 5, "total_tokens": 8}
        ),
        AIMessageChunk(content="", chunk_position="last"),
    ]
    expected = add_ai_message_chunks(chunks[0], *chunks[1:])
    merged = compact(chunks).merged()
    assert merged == expected
    assert merged.content == "Let me look it up. Done"
    assert merged.tool_calls == [
        {"name": "search", "args": {"q": "sea"}, "id": "c1", "type": "tool_call"}
    ]


def test_a_plain_reply_is_one_text_whatever_its_length() -> None:
    chunks = [AIMessageChunk(content=f" w{i}") for i in range(200)]
    assert compact(chunks).merged() == add_ai_message_chunks(chunks[0], *chunks[1:])
    assert not ReplyChunks()


def test_a_streaming_reply_holds_its_text_not_its_chunk_objects() -> None:
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = ReplyChunks()
    for i in range(200):
        kept.append(AIMessageChunk(content=f" w{i}"))
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert held < 200 * 200  # under 200 bytes a token; each chunk object is over 1 KB
