"""The check that closes every session that started a server: the captured output of every
server, Redis and upstream it started holds none of the API keys and JWTs the suite handed out,
and no `Authorization` value. It runs once they have all stopped, on each pytest-xdist worker."""

from __future__ import annotations

import re
from pathlib import Path

AUTHORIZATION_VALUE = re.compile(
    r"(?i)(authorization|bearer)[\"']?\s*[:=]?\s*[\"']?(bearer\s+)?(gg_|eyJ)"
)


def assert_no_secret_in_logs(logs_dir: Path, secrets: set[str]) -> None:
    logs = sorted(logs_dir.glob("*.log"))
    assert logs, "the session asked for a log folder and started no server"
    for log in logs:
        text = log.read_text(errors="replace")
        leaked = [secret[:8] for secret in secrets if secret in text]
        assert not leaked, f"{log.name} holds secrets starting {leaked}"
        assert not AUTHORIZATION_VALUE.search(text), f"{log.name} holds an Authorization value"
        for secret in secrets:
            # Nor the key's hash-free halves (a log that truncated the key).
            assert secret[-20:] not in text, log.name
