"""Client-visible failures: one type per failure, each with its HTTP status and stable code."""

from __future__ import annotations

import math


class GraphgateError(Exception):
    """A failure a client is told about; the HTTP layer maps it to the JSON error body."""

    status = 500
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self._headers = headers or {}

    def headers(self) -> dict[str, str]:
        """Response headers that belong to this failure (Retry-After in whole seconds)."""
        if self.retry_after is None:
            return dict(self._headers)
        return {**self._headers, "Retry-After": str(max(1, math.ceil(self.retry_after)))}


# Retry-After, in one place: a busy resource (a concurrency slot, a session, a replica's
# acknowledgement, a draining instance) is free again within a second; a store that failed
# takes longer to come back.
RETRY_BUSY_SECONDS = 1.0
RETRY_STORE_SECONDS = 5.0


class InvalidInput(GraphgateError):
    status = 400
    code = "invalid_input"


class InputTooLong(GraphgateError):
    status = 400
    code = "input_too_long"


def refuse_too_long(tokens: int, limit: int, what: str = "The input") -> None:
    """`MAX_INPUT_TOKENS`, with one message wherever it is met: the turn at admission, what a
    session must keep when its history is fitted, a route chain's own prompt."""
    if tokens > limit:
        raise InputTooLong(f"{what} has {tokens} tokens; the limit is {limit} (MAX_INPUT_TOKENS).")


class UnsupportedParameter(GraphgateError):
    """A request field graphgate cannot honour; refused by name rather than ignored."""

    status = 400
    code = "unsupported_parameter"

    def __init__(self, param: str, why: str) -> None:
        super().__init__(f"`{param}` is not supported: {why}")
        self.param = param


class Unauthenticated(GraphgateError):
    """No credential, or one that is wrong, expired or revoked (RFC 6750's challenge)."""

    status = 401
    code = "unauthenticated"

    def __init__(self, message: str, *, challenge: str = 'Bearer realm="graphgate"') -> None:
        super().__init__(message, headers={"WWW-Authenticate": challenge})


class Forbidden(GraphgateError):
    """Authenticated, but not allowed this (the console and `/admin/` without the admin role)."""

    status = 403
    code = "forbidden"


class KeyNotManaged(GraphgateError):
    """A change to a key that graphgate does not store (no Redis, or a keys file's key)."""

    status = 409
    code = "key_not_managed"


class NotFound(GraphgateError):
    status = 404
    code = "not_found"


class PayloadTooLarge(GraphgateError):
    status = 413
    code = "payload_too_large"


class MethodNotAllowed(GraphgateError):
    status = 405
    code = "method_not_allowed"


class UnsupportedMediaType(GraphgateError):
    status = 415
    code = "unsupported_media_type"


class ValidationFailed(GraphgateError):
    """A well-formed JSON body whose shape or values the route does not accept."""

    status = 422
    code = "validation_error"


class SessionBusy(GraphgateError):
    """Another turn of the session is running (`SESSION_CONFLICT=reject`)."""

    status = 409
    code = "session_busy"


class ThreadConflict(GraphgateError):
    """A LangGraph API thread that cannot take this request: it exists already, or it belongs
    to another graph."""

    status = 409
    code = "thread_conflict"


class SessionLeaseLost(SessionBusy):
    """The turn's session lock lapsed and another turn took it: the turn is not stored."""


class SessionWaitExpired(GraphgateError):
    """The session's earlier turns kept it busy for all of `QUEUE_TIMEOUT`."""

    status = 503
    code = "session_busy"


class HeadersTooLarge(GraphgateError):
    status = 431
    code = "headers_too_large"


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


class InternalError(GraphgateError):
    """A bug: logged once with its trace id; the client learns nothing more."""

    status = 500
    code = "internal_error"


class UpstreamError(GraphgateError):
    status = 502
    code = "upstream_error"


class Unavailable(GraphgateError):
    status = 503
    code = "unavailable"


class ShuttingDown(GraphgateError):
    status = 503
    code = "shutting_down"


class UpstreamTimeout(GraphgateError):
    status = 504
    code = "upstream_timeout"
