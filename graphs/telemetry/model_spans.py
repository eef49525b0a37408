"""A model call's span and metrics, by OpenTelemetry's GenAI semantic conventions.

One span per model tried, `chat {model}` of kind CLIENT, a child of the node that called it: a
fallback's span follows the failed one's, with a `fallback` event naming the model it replaces.
Each HTTP attempt beyond the first (the provider SDK's retries) is a `retry` event on its span.
The reply's model, usage and finish reasons are attributes; the prompt and the reply text are
not, unless `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`. The metrics are the
conventions' `gen_ai.client.token.usage` and `gen_ai.client.operation.duration`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessageChunk, BaseMessage
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from graphs.telemetry.tracer import METER, TRACER, captures_content, metering, tracing

if TYPE_CHECKING:
    from graphs.model.factory import ModelSpec

# The conventions' provider names; the demo model is graphgate's own.
PROVIDER_NAMES = {"openai": "openai", "anthropic": "anthropic"}
TOKEN_USAGE = METER.create_histogram(
    "gen_ai.client.token.usage", unit="{token}", description="Tokens used per model call"
)
DURATION = METER.create_histogram(
    "gen_ai.client.operation.duration", unit="s", description="Duration of a model call"
)


def call_attributes(spec: ModelSpec, kwargs: dict[str, Any]) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": PROVIDER_NAMES.get(spec.provider, f"graphgate.{spec.provider}"),
        "gen_ai.request.model": spec.name,
    }
    for name in ("max_tokens", "temperature", "top_p"):
        if kwargs.get(name) is not None:
            attributes[f"gen_ai.request.{name}"] = kwargs[name]
    return attributes


def as_text(messages: Sequence[BaseMessage]) -> str:
    return json.dumps([{"role": m.type, "content": m.content} for m in messages], default=str)


@contextmanager
def model_call_span(
    spec: ModelSpec,
    messages: Sequence[BaseMessage],
    kwargs: dict[str, Any],
    fallback_from: str | None,
) -> Iterator[Span | None]:
    """The span of one model's call (None when nobody traces), current within the block so
    the HTTP attempts it makes note their retries on it; and the call's duration metric. Enter
    it only when spans or metrics go anywhere (`observed`)."""
    attributes = call_attributes(spec, kwargs)
    started = time.perf_counter()
    try:
        if not tracing():
            yield None
            return
        if captures_content():
            attributes["gen_ai.input.messages"] = as_text(messages)
        with TRACER.start_as_current_span(
            f"chat {spec.name}",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            if fallback_from is not None:
                span.add_event("fallback", {"graphgate.fallback_from": fallback_from})
            try:
                yield span
            except BaseException as exc:
                failed(span, type(exc).__name__)
                raise
    finally:
        if metering():
            metric = {k: v for k, v in attributes.items() if not k.startswith("gen_ai.input")}
            DURATION.record(time.perf_counter() - started, metric)


def failed(span: Span | None, error_type: str) -> None:
    """The call failed: the span says how, by the error's type only (its message may quote the
    prompt)."""
    if span is not None:
        span.set_attribute("error.type", error_type)
        span.set_status(Status(StatusCode.ERROR, error_type))


def answered(span: Span | None, spec: ModelSpec, reply: AIMessageChunk, attempts: int) -> None:
    """The reply's model, usage, finish reasons and attempts on the span (if traced), its
    tokens in the metric (if metered)."""
    metadata = reply.response_metadata or {}
    usage: dict[str, Any] = dict(reply.usage_metadata or {})
    tokens = {kind: int(usage.get(f"{kind}_tokens") or 0) for kind in ("input", "output")}
    if metering():
        base = call_attributes(spec, {})
        for kind, count in tokens.items():
            TOKEN_USAGE.record(count, {**base, "gen_ai.token.type": kind})
    if span is None:
        return
    attributes: dict[str, Any] = {
        "gen_ai.response.model": str(metadata.get("model_name") or spec.name),
        "gen_ai.usage.input_tokens": tokens["input"],
        "gen_ai.usage.output_tokens": tokens["output"],
        "graphgate.attempts": attempts,
    }
    reason = metadata.get("finish_reason") or metadata.get("stop_reason")
    if reason:
        attributes["gen_ai.response.finish_reasons"] = [str(reason)]
    if captures_content():
        attributes["gen_ai.output.messages"] = as_text([reply])
    span.set_attributes(attributes)


def attempted(span: Span | None, attempt: int) -> None:
    """One more HTTP attempt of the call; from the second on, a retry."""
    if span is not None and attempt > 1:
        span.add_event("retry", {"graphgate.attempt": attempt})
