"""The OpenAPI document tells the truth about errors: every operation lists the error responses
it can give, with the error body's schema (OpenAI's shape under `/v1`), so clients, generators
and response-conformance checks see the real contract. FastAPI alone lists only 422, with its
own body, which graphgate never sends."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "trace_id"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "trace_id": {"type": "string"},
            },
        }
    },
}
OPENAI_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": "string"},
            },
        }
    },
}
ERRORS = {
    "400": "invalid_input, input_too_long",
    "401": "unauthenticated",
    "404": "not_found",
    "409": "session_busy (another turn of the session is running; with Retry-After)",
    "413": "payload_too_large",
    "415": "unsupported_media_type",
    "422": "validation_error",
    "429": "rate_limited, budget_exceeded (with Retry-After)",
    "431": "headers_too_large",
    "500": "internal_error",
    "502": "upstream_error",
    "503": "unavailable, shutting_down, session_busy (with Retry-After)",
    "504": "upstream_timeout",
}
# Probes are never authenticated and take no body; they can still fail inside.
OPEN_ERRORS = ("431", "500", "503")
ADMIN_PREFIX = "/admin/"
ADMIN_ERRORS = {
    **ERRORS,
    "403": "forbidden (the caller does not hold the admin role)",
    "409": "key_not_managed (a keys file's key, or no Redis to keep keys in)",
}


def error_responses(path: str) -> dict[str, Any]:
    schema_name = "OpenAIError" if path.startswith("/v1/") else "Error"
    errors = ADMIN_ERRORS if path.startswith(ADMIN_PREFIX) else ERRORS
    codes = OPEN_ERRORS if path.startswith("/health/") else tuple(errors)
    return {
        code: {
            "description": errors[code],
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}
            },
        }
        for code in codes
    }


def with_errors(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(Error=ERROR_SCHEMA, OpenAIError=OPENAI_ERROR_SCHEMA)
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    for path, operations in document["paths"].items():
        for operation in operations.values():
            operation["responses"].update(error_responses(path))
    return document


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, routes=app.routes)
            app.openapi_schema = with_errors(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
