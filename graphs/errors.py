"""Client-visible failures: one type per failure, each with its HTTP status and stable code."""

from __future__ import annotations

import math


class GraphgateError(Exception):
    """A failure a client is told about; the HTTP layer maps it to the JSON error body."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        """Response headers that belong to this failure (Retry-After in whole seconds)."""
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}


class InvalidInput(GraphgateError):
    status = 400
    code = "invalid_input"


class InputTooLong(GraphgateError):
    status = 400
    code = "input_too_long"


class NotFound(GraphgateError):
    status = 404
    code = "not_found"


class PayloadTooLarge(GraphgateError):
    status = 413
    code = "payload_too_large"


class RateLimited(GraphgateError):
    status = 429
    code = "rate_limited"


class BudgetExceeded(GraphgateError):
    status = 429
    code = "budget_exceeded"


class ClientClosedRequest(GraphgateError):
    """The client left before its answer; nobody reads this response (nginx's 499)."""

    status = 499
    code = "client_closed"


class UpstreamError(GraphgateError):
    status = 502
    code = "upstream_error"


class Unavailable(GraphgateError):
    status = 503
    code = "unavailable"


class UpstreamTimeout(GraphgateError):
    status = 504
    code = "upstream_timeout"
