"""Every failure, in one place, becomes design.md's JSON error body with its HTTP status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from graphs.errors import GraphgateError
from graphs.runtime.metrics import REFUSALS
from middleware.errors import error_response

logger = logging.getLogger(__name__)

HTTP_CODES = {
    400: "invalid_input",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    422: "validation_error",
}


async def on_graphgate_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GraphgateError)
    REFUSALS.labels(exc.code).inc()
    return error_response(request.scope, exc.status, exc.code, exc.message, exc.headers())


async def on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
    )
    return error_response(request.scope, 422, "validation_error", problems or "Invalid request.")


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    headers = dict(exc.headers) if exc.headers else None
    return error_response(request.scope, exc.status_code, code, message, headers)


async def on_redis_error(request: Request, exc: Exception) -> Response:
    logger.error("redis failed: %s", type(exc).__name__)
    REFUSALS.labels("unavailable").inc()
    message = "Session and limit storage is unavailable; try again shortly."
    return error_response(request.scope, 503, "unavailable", message, {"Retry-After": "5"})


async def on_unexpected_error(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error", exc_info=exc)
    return error_response(request.scope, 500, "internal_error", "Internal server error.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GraphgateError, on_graphgate_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(RedisError, on_redis_error)
    app.add_exception_handler(Exception, on_unexpected_error)
