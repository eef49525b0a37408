"""The span of a Redis round trip (`graphs/store/round_trip.py`), and one child span per part
of a turn's state it carries (`checkpoint read`, `checkpoint write`): a turn's admission and its
end each read or write the session beside its limits, usage and lock in one trip, so each part
took as long as the trip did, and its span says so (same start, same end)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from graphs.telemetry.run_spans import run_parent
from graphs.telemetry.tracer import TRACER


@contextmanager
def trip_span(name: str, parts: list[str], commands: int) -> Iterator[None]:
    """Spans of the trip `name` sent within the block: `commands` to Redis (0: in memory).
    Entered when spans go anywhere (`tracing`)."""
    attributes: dict[str, str | int | list[str]] = {"graphgate.carries": parts}
    if commands:
        attributes.update({"db.system.name": "redis", "db.operation.batch.size": commands})
    started = time.time_ns()
    kind = SpanKind.CLIENT if commands else SpanKind.INTERNAL
    with TRACER.start_as_current_span(
        name, context=run_parent(), kind=kind, attributes=attributes
    ) as span:
        yield
    ended = time.time_ns()
    within = trace.set_span_in_context(span)
    for part in parts:
        child = TRACER.start_span(
            part, context=within, start_time=started, attributes={"graphgate.round_trip": name}
        )
        child.end(end_time=ended)
