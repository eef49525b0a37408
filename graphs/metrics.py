"""Prometheus metrics, one definition each. Under gunicorn every worker writes its own files in
`PROMETHEUS_MULTIPROC_DIR` (set by gunicorn.conf.py) and `/metrics` sums them."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

HTTP_REQUESTS = Counter(
    "graphgate_http_requests_total", "HTTP requests answered", ["route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "graphgate_http_request_duration_seconds",
    "Time to answer a request (a stream: until its end)",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge(
    "graphgate_http_requests_in_flight", "Requests being answered", multiprocess_mode="livesum"
)
OPEN_STREAMS = Gauge(
    "graphgate_open_streams", "Server-sent event streams open", multiprocess_mode="livesum"
)
TIME_TO_FIRST_TOKEN = Histogram(
    "graphgate_time_to_first_token_seconds",
    "From the model call to its first token",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
TOKENS = Counter(
    "graphgate_tokens_total",
    "Tokens paid for: as the provider reported them, or counted for a reply cut short",
    ["model", "kind"],
)
PARTIAL_TOKENS = Counter(
    "graphgate_partial_tokens_total",
    "The tokens of replies cut short (a failure, a deadline, a client gone), also in tokens_total",
    ["model", "kind"],
)
COST = Counter("graphgate_cost_usd_total", "Spend priced from the pricing table", ["model"])
CACHE = Counter("graphgate_cache_lookups_total", "LLM cache lookups", ["result"])
REFUSALS = Counter("graphgate_refusals_total", "Requests refused, by error code", ["code"])
RETRIES = Counter("graphgate_retries_total", "Upstream attempts retried by the SDK", ["model"])
FALLBACKS = Counter(
    "graphgate_fallbacks_total", "Replies that came from a fallback model", ["model"]
)
UPSTREAM_ERRORS = Counter(
    "graphgate_upstream_errors_total", "Failed model calls, by kind", ["model", "kind"]
)
