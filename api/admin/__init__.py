"""`/admin/`: the operator's JSON API (usage across principals, keys, live state, threads),
for admins only; the console (`/console`) is a page over it and nothing else. No answer of it
is stored by a browser or a proxy: one holds a new key, the others principals' data."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from api.admin import keys, live, threads, usage


def not_stored(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"


router = APIRouter(dependencies=[Depends(not_stored)])
for part in (usage.router, keys.router, live.router, threads.router):
    router.include_router(part)
