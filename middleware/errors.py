"""The one JSON error body of design.md: `{"error": {"code", "message", "trace_id"}}`."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse
from starlette.types import Scope

from middleware.context import trace_id_of


def error_body(code: str, message: str, trace_id: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "trace_id": trace_id}}


def error_response(
    scope: Scope, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message, trace_id_of(scope)), status, headers=headers)
