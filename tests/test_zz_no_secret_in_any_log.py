"""Runs last (pytest collects files by name): the captured output of every server, Redis and
upstream the suite started holds none of the API keys and JWTs it handed out, and no
`Authorization` value."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ISSUED_SECRETS

AUTHORIZATION_VALUE = re.compile(
    r"(?i)(authorization|bearer)[\"']?\s*[:=]?\s*[\"']?(bearer\s+)?(gg_|eyJ)"
)


def test_no_server_output_holds_a_key_a_jwt_or_an_authorization_value(logs_dir: Path) -> None:
    logs = sorted(logs_dir.glob("*.log"))
    assert logs, "the suite started no server"
    if not ISSUED_SECRETS:
        pytest.skip("no test of this run handed out a key or token")
    for log in logs:
        text = log.read_text(errors="replace")
        leaked = [secret[:8] for secret in ISSUED_SECRETS if secret in text]
        assert not leaked, f"{log.name} holds secrets starting {leaked}"
        assert not AUTHORIZATION_VALUE.search(text), f"{log.name} holds an Authorization value"
        for secret in ISSUED_SECRETS:
            # Nor the key's hash-free halves (a log that truncated the key).
            assert secret[-20:] not in text, log.name
