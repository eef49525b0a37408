"""The authenticated principal of a request, as a FastAPI dependency (`caller: Caller`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from graphs.errors import Unauthenticated
from graphs.identity import Principal
from middleware.request_context import request_context


def authenticated(request: Request) -> Principal:
    """The principal the auth middleware proved (it runs before every guarded route)."""
    principal = request_context(request.scope).principal
    if principal is None:
        raise Unauthenticated("This request carries no credential.")
    return principal


Caller = Annotated[Principal, Depends(authenticated)]
