"""The authenticated principal of a request, as a FastAPI dependency (`caller: Caller`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from graphs.identity import Principal
from middleware.request_context import request_context


def authenticated(request: Request) -> Principal:
    """The principal the auth middleware proved; 401 if none (`RequestContext.caller`)."""
    return request_context(request.scope).caller()


Caller = Annotated[Principal, Depends(authenticated)]
