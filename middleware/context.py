"""Per-request values the middleware and routes share, kept in the ASGI scope's state."""

from __future__ import annotations

from starlette.types import Scope

TRACE_ID = "trace_id"
PRINCIPAL = "principal"
RATE_LIMIT = "rate_limit"
STREAM_FAILURE = "stream_failure"
CLIENT_GONE = "client_gone"
RUN_FACTS = "run_facts"


def scope_state(scope: Scope) -> dict[str, object]:
    """The dict behind `request.state`, created on first use."""
    state: dict[str, object] = scope.setdefault("state", {})
    return state


def trace_id_of(scope: Scope) -> str:
    return str(scope_state(scope).get(TRACE_ID, ""))
