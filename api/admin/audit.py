"""The admins' audit trail: one line per change an admin makes, and per thread an admin reads
or deletes (logger `graphgate.audit`, written whatever `LOG_LEVEL` says: `serving/log_config.py`).
Each line names the admin and the key it used, the action, and what it touched; never a key."""

from __future__ import annotations

import logging
from typing import Any

from graphs.identity import Principal

AUDIT = logging.getLogger("graphgate.audit")


def audited(admin: Principal, action: str, target: str, **details: Any) -> None:
    """An audit line: `admin` did `action` to `target` (a key id, a thread), with `details`."""
    fields = {"actor": admin.name, "actor_key_id": admin.key_id, "action": action}
    AUDIT.info(
        "admin %s %s %s", admin.name, action, target,
        extra={"audit": {**fields, "target": target, **details}},
    )  # fmt: skip
