"""Who a run is for: the principal, its quota, the session-id rule and the thread id.

The one home of these rules: the auth middleware builds the principal, admission and the
session routes build thread ids, and the graph's nodes read the principal of a run from its
`configurable`. One principal never reaches another's sessions, usage or cache entries,
because each is found by the authenticated principal: its thread ids are built here, its Redis
keys in `graphs/store/keys.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from graphs.errors import InvalidInput

ANONYMOUS = "anonymous"
# Principals end up in Redis keys (inside `{...}` hash tags) and in thread ids
# (`<principal>:<session>`), so neither braces nor ':' may appear; '@', '|' and '+' let
# e-mail addresses and identity-provider subjects (`auth0|123`) be used as they are.
PRINCIPAL_PATTERN = re.compile(r"^[A-Za-z0-9._@|+-]{1,128}$")
SESSION_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
PRINCIPAL_RULE = "1-128 letters, digits, '.', '_', '-', '@', '|' or '+'"
SESSION_ID_RULE = "1-128 letters, digits, '.', '_' or '-'"


@dataclass(frozen=True)
class Quota:
    """Per-principal overrides of the server's limits (None: the server's setting)."""

    rate_limit_max: int | None = None
    tokens_per_minute: int | None = None
    daily_budget_usd: float | None = None


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. `key_id` names the API key used (never the key itself);
    `admin`: it may use the operator console and `/admin/`."""

    name: str
    quota: Quota = field(default_factory=Quota)
    key_id: str | None = None
    admin: bool = False


def is_principal_name(name: str) -> bool:
    return bool(PRINCIPAL_PATTERN.match(name))


def checked_session_id(session_id: object) -> str:
    """The session id, or `InvalidInput` when it breaks the rule."""
    if not isinstance(session_id, str) or not SESSION_ID_PATTERN.match(session_id):
        raise InvalidInput(f"session_id must be {SESSION_ID_RULE}.")
    return session_id


def thread_id(principal: str, session_id: object, route: str | None = None) -> str:
    """The checkpoint thread of a principal's session: `<principal>:<session>` on the built-in
    chat (`route` None; its threads predate routes), `<principal>:<route>:<session>` on any
    other route, so one session id names two sessions on two routes."""
    session = checked_session_id(session_id)
    return f"{principal}:{session}" if route is None else f"{principal}:{route}:{session}"
