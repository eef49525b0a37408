"""A real OTLP receiver on loopback, as a collector receives: OTLP/HTTP (`POST /v1/traces`,
`/v1/metrics`, protobuf, gzip or not) and OTLP/gRPC (the collector's `TraceService` and
`MetricsService`), each request decoded with the OpenTelemetry protobuf definitions. A test
waits on what arrived (a condition, never a sleep)."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from scripts.processes import free_port

KINDS = {1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


def value_of(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [value_of(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None


@dataclass
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    error: bool
    service: str

    def texts(self) -> list[str]:
        """Every string this span carries: its name, attribute and event values."""
        found = [self.name]
        for attributes in [self.attributes, *(attrs for _, attrs in self.events)]:
            for value in attributes.values():
                found += [str(v) for v in (value if isinstance(value, list) else [value])]
        return found


@dataclass
class Received:
    spans: list[ReceivedSpan] = field(default_factory=list)
    metric_names: set[str] = field(default_factory=set)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def add_traces(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        spans = []
        for resource in request.resource_spans:
            attributes = {a.key: value_of(a.value) for a in resource.resource.attributes}
            for scope in resource.scope_spans:
                for span in scope.spans:
                    spans.append(
                        ReceivedSpan(
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            kind=KINDS.get(span.kind, "UNSPECIFIED"),
                            attributes={a.key: value_of(a.value) for a in span.attributes},
                            events=[
                                (e.name, {a.key: value_of(a.value) for a in e.attributes})
                                for e in span.events
                            ],
                            error=span.status.code == 2,
                            service=str(attributes.get("service.name")),
                        )
                    )
        with self.changed:
            self.spans += spans
            self.changed.notify_all()

    def add_metrics(self, request: metrics_service_pb2.ExportMetricsServiceRequest) -> None:
        names = {
            metric.name
            for resource in request.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        }
        with self.changed:
            self.metric_names |= names
            self.changed.notify_all()

    def wait_for(self, ready: Callable[[Received], bool], within: float = 20) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: ready(self), within), "not received in time"

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self.changed:
            return [span for span in self.spans if span.trace_id == trace_id]


def http_handler(received: Received) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path == "/v1/traces":
                received.add_traces(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
                answer = trace_service_pb2.ExportTraceServiceResponse()
            elif self.path == "/v1/metrics":
                request = metrics_service_pb2.ExportMetricsServiceRequest.FromString(body)
                received.add_metrics(request)
                answer = metrics_service_pb2.ExportMetricsServiceResponse()
            else:
                self.send_error(404)
                return
            payload = answer.SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, received: Received) -> None:
        self.received = received

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - the service's name
        self.received.add_traces(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class MetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, received: Received) -> None:
        self.received = received

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - the service's name
        self.received.add_metrics(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


@contextmanager
def otlp_http_receiver() -> Iterator[tuple[str, Received]]:
    """An OTLP/HTTP receiver: its endpoint (for `OTEL_EXPORTER_OTLP_ENDPOINT`) and what it got."""
    received = Received()
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), http_handler(received))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def otlp_grpc_receiver() -> Iterator[tuple[str, Received]]:
    """An OTLP/gRPC receiver (plain text on loopback): its endpoint and what it got."""
    received = Received()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    # The generated gRPC modules are untyped.
    add_traces = trace_service_pb2_grpc.add_TraceServiceServicer_to_server
    add_metrics = metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server
    add_traces(TraceService(received), server)  # type: ignore[no-untyped-call]
    add_metrics(MetricsService(received), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        server.stop(grace=None)
