"""Whether anyone listens, and graphgate's tracer and meter.

Tracing is on when an OpenTelemetry SDK provider is installed: the server installs one when
`OTEL_EXPORTER_OTLP_ENDPOINT` is set (`serving/telemetry.py`), a host such as `langgraph dev`
may install its own. Otherwise every hook here is skipped before it makes a span object, so
tracing off costs one check per hook (measured in docs/performance.md).
"""

from __future__ import annotations

import os

from opentelemetry import metrics, trace
from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider

SCOPE = "graphgate"
TRACER = trace.get_tracer(SCOPE)
METER = metrics.get_meter(SCOPE)
# OpenTelemetry's own switch for GenAI instrumentations: prompt and reply text on the model
# spans. Off unless set: prompts are user data.
CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


def tracing() -> bool:
    """Whether spans go anywhere (an SDK provider is installed)."""
    provider = trace.get_tracer_provider()
    return not isinstance(provider, ProxyTracerProvider | NoOpTracerProvider)


def captures_content() -> bool:
    """Whether model spans carry the prompt and reply text."""
    return os.environ.get(CAPTURE_CONTENT, "").strip().lower() == "true"
