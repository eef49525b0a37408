"""A model call's accounting: its usage as the provider reported it, priced from the table and
counted in the metrics; and the usage of a reply cut short (a failure, a deadline, a client
gone), paid for as far as it went."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessageChunk

from graphs.metrics import COST, FALLBACKS, PARTIAL_TOKENS, TOKENS
from graphs.model.factory import ModelSpec
from graphs.model.pricing import PriceTable
from graphs.model.reply_chunks import ReplyChunks
from graphs.model.tokens import TokenCounter
from graphs.model.turn import NO_USAGE, ModelCall

logger = logging.getLogger(__name__)


@functools.cache
def warn_unpriced(model: str) -> None:
    """Once per model and process: its cost is reported as null."""
    logger.warning("no price for model %s in the pricing table; its cost is unknown", model)


@dataclass
class ReplyInProgress:
    """The reply of the model answering now, as it streams: paid for even if it never ends."""

    spec: ModelSpec | None = None
    fallback_used: bool = False
    chunks: ReplyChunks = field(default_factory=ReplyChunks)
    answered: ModelCall | None = None

    def start(self, spec: ModelSpec, fallback_used: bool) -> None:
        self.spec, self.fallback_used, self.chunks = spec, fallback_used, ReplyChunks()


def priced_call(
    prices: PriceTable,
    spec: ModelSpec,
    reply: AIMessageChunk,
    *,
    fallback_used: bool,
    retries: int | None,
    partial: bool = False,
) -> ModelCall:
    """The call's usage as the provider reported it (or as counted, for a reply cut short),
    priced from the table (None for an unpriced model), counted in the metrics."""
    reported: dict[str, Any] = dict(reply.usage_metadata or NO_USAGE)
    usage = {key: int(reported.get(key) or 0) for key in NO_USAGE}
    priced_model = str(reply.response_metadata.get("model_name") or spec.name)
    cost = prices.cost(priced_model, usage["input_tokens"], usage["output_tokens"])
    if cost is None:
        warn_unpriced(priced_model)
    for counter in (TOKENS, *([PARTIAL_TOKENS] if partial else [])):
        counter.labels(spec.label, "input").inc(usage["input_tokens"])
        counter.labels(spec.label, "output").inc(usage["output_tokens"])
    if cost:
        COST.labels(spec.label).inc(cost)
    if fallback_used:
        FALLBACKS.labels(spec.label).inc()
    return ModelCall(
        spec.label, usage, cost, fallback_used=fallback_used, retries=retries, partial=partial
    )


def finished_call(
    progress: ReplyInProgress, prompt_tokens: int, counter: TokenCounter, prices: PriceTable
) -> ModelCall | None:
    """The call as the turn keeps it: answered, or cut short and marked partial (None when no
    model had streamed anything). A reply cut short counts the larger of what the provider
    reported (it may report early, as Anthropic's first event does) and tiktoken's count of
    the prompt and of what streamed."""
    if progress.answered is not None:
        return progress.answered
    if progress.spec is None or not progress.chunks:
        return None
    reply = progress.chunks.merged()
    streamed = reply.text + "".join(
        str(chunk.get("args") or "") for chunk in reply.tool_call_chunks
    )
    reported: dict[str, Any] = dict(reply.usage_metadata or {})
    input_tokens = max(int(reported.get("input_tokens") or 0), prompt_tokens)
    output_tokens = max(int(reported.get("output_tokens") or 0), counter.count_text(streamed))
    reply.usage_metadata = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }
    return priced_call(
        prices,
        progress.spec,
        reply,
        fallback_used=progress.fallback_used,
        retries=None,
        partial=True,
    )
