"""The authenticated principal of a request, as a FastAPI dependency (`caller: Caller`), and
the same for `/admin/`'s routes, which an admin alone may call (`admin: Admin`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from graphs.errors import Forbidden
from graphs.identity import Principal
from middleware.request_context import request_context


def authenticated(request: Request) -> Principal:
    """The principal the auth middleware proved; 401 if none (`RequestContext.caller`)."""
    return request_context(request.scope).caller()


Caller = Annotated[Principal, Depends(authenticated)]


def administrator(caller: Caller) -> Principal:
    """The caller, if it holds the admin role; 403 `forbidden` otherwise."""
    if not caller.admin:
        raise Forbidden("The console and /admin/ need a principal with the admin role.")
    return caller


Admin = Annotated[Principal, Depends(administrator)]
