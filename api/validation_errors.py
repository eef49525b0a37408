"""Validation errors from pydantic, FastAPI and LangServe as one short message for the client.

LangServe raises `RequestValidationError` with plain strings as errors (`"Invalid JSON
body"`), pydantic and FastAPI with dicts: both are described, and the client's own values are
never echoed back (they may be huge, or secret)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MAX_ERRORS = 5


def describe_one(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)[:200]
    location = ".".join(str(part) for part in error.get("loc", ()))
    message = str(error.get("msg", "invalid"))[:200]
    return f"{location}: {message}" if location else message


def describe(errors: Sequence[Any]) -> str:
    described = [describe_one(error) for error in errors[:MAX_ERRORS]]
    more = len(errors) - MAX_ERRORS
    if more > 0:
        described.append(f"and {more} more")
    return "; ".join(described) or "Invalid request."
