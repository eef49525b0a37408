"""FastAPI's exception handlers: every failure raised inside a route becomes a `GraphgateError`,
rendered by `middleware/error_responses.py`. Unexpected exceptions are not handled here but by
`middleware/unexpected_errors.py`, inside the trace id (Starlette's own handler for them runs
outside every middleware and re-raises)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from redis.exceptions import RedisClusterException, RedisError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from api.validation_errors import describe
from graphs.errors import (
    GraphgateError,
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    ValidationFailed,
)
from graphs.store.redis_client import store_unavailable
from middleware.error_responses import error_response

logger = logging.getLogger(__name__)

HTTP_ERRORS: dict[int, type[GraphgateError]] = {
    400: InvalidInput,
    404: NotFound,
    405: MethodNotAllowed,
    422: ValidationFailed,
}


def from_http_exception(exc: HTTPException) -> GraphgateError:
    """Starlette's and LangServe's HTTPExceptions as graphgate's errors."""
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    error = HTTP_ERRORS.get(exc.status_code, GraphgateError)(
        message, headers=dict(exc.headers or {})
    )
    if exc.status_code not in HTTP_ERRORS:
        error.status, error.code = exc.status_code, "http_error"
    return error


async def on_graphgate_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GraphgateError)
    return error_response(request.scope, exc)


async def on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(request.scope, ValidationFailed(describe(exc.errors())))


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(request.scope, from_http_exception(exc))


async def on_redis_error(request: Request, exc: Exception) -> Response:
    return error_response(request.scope, store_unavailable(exc))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GraphgateError, on_graphgate_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(RedisError, on_redis_error)
    app.add_exception_handler(RedisClusterException, on_redis_error)
