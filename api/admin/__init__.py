"""`/admin/`: the operator's JSON API (usage across principals, keys, live state, threads),
for admins only; the console (`/console`) is a page over it and nothing else."""

from __future__ import annotations

from fastapi import APIRouter

from api.admin import keys, live, threads, usage

router = APIRouter()
for part in (usage.router, keys.router, live.router, threads.router):
    router.include_router(part)
