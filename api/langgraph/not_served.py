"""The LangGraph server's endpoints graphgate does not serve yet, each a 404 that names what is
missing, rather than a bare "Not Found" or, where a served path has the same shape (a thread's
state, a run), a 405 that reads as a wrong method. Fields of served requests that ask for what
is not served are refused in `bodies.py` (422). They stay out of the OpenAPI document."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NoReturn

from fastapi import APIRouter

from api.langgraph.bodies import NOT_YET
from graphs.errors import NotFound

ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE"]
CRONS = "Scheduling runs (crons)"

# (path, methods, what is not served): what `langgraph-sdk`'s crons, store and
# `threads.update_state` ask for.
NOT_SERVED: list[tuple[str, list[str], str]] = [
    ("/runs/crons", ["POST"], CRONS),
    ("/runs/crons/{rest:path}", ANY_METHOD, CRONS),
    ("/threads/{thread_id}/runs/crons", ["POST"], CRONS),
    ("/store/{rest:path}", ANY_METHOD, "The store"),
    ("/threads/{thread_id}/state", ["POST"], "Updating a thread's state"),
]


def refusing(what: str) -> Callable[[], Awaitable[NoReturn]]:
    """An endpoint that answers 404, naming `what` is not served yet."""

    async def refuse() -> NoReturn:
        raise NotFound(f"{what} {NOT_YET}.")

    return refuse


router = APIRouter(include_in_schema=False)
for path, methods, what in NOT_SERVED:
    router.add_api_route(path, refusing(what), methods=methods, response_model=None)
