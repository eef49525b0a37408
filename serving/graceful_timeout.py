"""How long a worker may drain after SIGTERM (`GRACEFUL_TIMEOUT`): long enough for a turn that
began just before the signal to finish. A turn may wait `QUEUE_TIMEOUT` for its session's
earlier turns, then run for `REQUEST_TIMEOUT` (its route's, when longer; the wait for an
upstream slot is inside it), then store its history and usage."""

from __future__ import annotations

import math

from graphs.routes import RouteFileError, load_route_specs
from graphs.settings import Settings

# After the model's deadline: persisting the turn, closing its stream, and the worker's own
# one-second exit margin (serving/gunicorn_worker.py).
DRAIN_MARGIN_SECONDS = 5


def longest_turn_seconds(settings: Settings) -> float:
    """The longest a turn may last: the session wait, then the longest route's deadline."""
    try:
        specs = load_route_specs(settings)
    except RouteFileError:  # the app refuses the file at start-up, naming what is wrong
        return settings.queue_timeout + settings.request_timeout
    deadlines = [spec.settings(settings).request_timeout for spec in specs]
    return settings.queue_timeout + max(deadlines)


def needed_graceful_timeout(settings: Settings) -> int:
    return math.ceil(longest_turn_seconds(settings)) + DRAIN_MARGIN_SECONDS


def graceful_timeout_seconds(settings: Settings) -> int:
    """`GRACEFUL_TIMEOUT`, else what a turn needs."""
    return settings.graceful_timeout or needed_graceful_timeout(settings)


def graceful_timeout_problem(seconds: float, settings: Settings) -> str | None:
    """Why a drain of `seconds` would cut turns off, if it would."""
    needed = needed_graceful_timeout(settings)
    if seconds >= needed:
        return None
    return (
        f"GRACEFUL_TIMEOUT={seconds:g} is shorter than a turn may last: QUEUE_TIMEOUT "
        f"{settings.queue_timeout:g} s + REQUEST_TIMEOUT (the longest route's) + "
        f"{DRAIN_MARGIN_SECONDS} s to store it = {needed} s. Raise it to {needed} or more, or "
        "unset it to have it derived."
    )
