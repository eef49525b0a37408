"""Whether anyone listens, and graphgate's tracer and meter.

Spans (metrics) go somewhere when an OpenTelemetry SDK tracer (meter) provider is installed:
the server installs them when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (`serving/telemetry.py`); a
host such as `langgraph dev` may install its own. Otherwise every hook checks this and does
nothing else: no span object, no context manager (docs/performance.md#tracing).
"""

from __future__ import annotations

import os

from opentelemetry import metrics, trace
from opentelemetry.metrics import NoOpMeterProvider
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


def metering() -> bool:
    """Whether metrics go anywhere (an SDK meter provider is installed)."""
    provider = metrics.get_meter_provider()
    # The API's default until one is installed is a proxy whose class is private.
    unset = type(provider).__name__ == "_ProxyMeterProvider"
    return not unset and not isinstance(provider, NoOpMeterProvider)


def observed() -> bool:
    """Whether spans or metrics go anywhere."""
    return tracing() or metering()


def captures_content() -> bool:
    """Whether model spans carry the prompt and reply text."""
    return os.environ.get(CAPTURE_CONTENT, "").strip().lower() == "true"
