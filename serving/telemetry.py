"""OpenTelemetry for the process: traces and metrics over OTLP when an endpoint is set
(`OTEL_EXPORTER_OTLP_ENDPOINT`, or the per-signal `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` /
`..._METRICS_ENDPOINT`), through the SDK and its exporters, which read every other standard
`OTEL_*` variable themselves (headers, timeouts, compression, certificates, sampling, resource
attributes, `OTEL_SERVICE_NAME`). `OTEL_EXPORTER_OTLP_PROTOCOL` picks `http/protobuf` (the
default) or `grpc`; grpc's exporter is imported only then.

Installed per worker in the app's lifespan (after gunicorn's fork), flushed and shut down when
the worker stops. With no endpoint nothing is installed or imported: the request span FastAPI
would make and graphgate's own spans (`graphs/telemetry/`) are skipped before they are made.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator
from typing import Any

from opentelemetry import metrics, trace

SERVICE_NAME = "graphgate"
EXPORTERS = {
    ("traces", "http/protobuf"): "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    ("traces", "grpc"): "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
    ("metrics", "http/protobuf"): "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    ("metrics", "grpc"): "opentelemetry.exporter.otlp.proto.grpc.metric_exporter",
}
CLASSES = {"traces": "OTLPSpanExporter", "metrics": "OTLPMetricExporter"}


def endpoint_set(signal: str, environ: dict[str, str]) -> bool:
    """Whether `signal` ("traces", "metrics") goes anywhere: an OTLP endpoint, its exporter not
    `none`, the SDK not disabled."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get(f"OTEL_{signal.upper()}_EXPORTER", "otlp").strip().lower() == "none":
        return False
    specific = f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"
    return bool(environ.get(specific) or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def protocol(signal: str, environ: dict[str, str]) -> str:
    chosen = environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL") or environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    chosen = chosen.strip().lower()
    if (signal, chosen) not in EXPORTERS:
        raise SystemExit(
            f"graphgate refuses to start: OTEL_EXPORTER_OTLP_PROTOCOL={chosen!r} is not "
            "supported: use http/protobuf or grpc."
        )
    return chosen


def exporter(signal: str, environ: dict[str, str]) -> Any:
    """The OTLP exporter of `signal`, built by its own constructor (which reads the `OTEL_*`
    variables)."""
    module = importlib.import_module(EXPORTERS[(signal, protocol(signal, environ))])
    return getattr(module, CLASSES[signal])()


@contextlib.contextmanager
def telemetry(environ: dict[str, str] | None = None) -> Iterator[None]:
    """Traces and metrics exported while the block runs, as the environment says."""
    environ = dict(os.environ if environ is None else environ)
    tracing, metering = endpoint_set("traces", environ), endpoint_set("metrics", environ)
    if not tracing and not metering:
        yield
        return
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create(
        {} if "OTEL_SERVICE_NAME" in environ else {"service.name": SERVICE_NAME}
    )
    providers: list[Any] = []
    if tracing:
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(BatchSpanProcessor(exporter("traces", environ)))
        trace.set_tracer_provider(tracer_provider)
        providers.append(tracer_provider)
    if metering:
        reader = PeriodicExportingMetricReader(exporter("metrics", environ))
        meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
        metrics.set_meter_provider(meter_provider)
        providers.append(meter_provider)
    try:
        yield
    finally:
        for provider in providers:
            provider.shutdown()
