"""gunicorn under a read-only root file system (the chart's security context), where the
process has no writable home: it starts and serves without an error line."""

from __future__ import annotations

from pathlib import Path

import httpx

from scripts.processes import ManagedProcess, child_env, free_port
from tests.process.test_startup_refusal import GUNICORN

# Nothing can be created under /proc, not even by root: a home no process can write to.
UNWRITABLE_HOME = "/proc/graphgate-has-no-home"


def test_gunicorn_with_no_writable_home_serves_and_logs_no_error(tmp_path: Path) -> None:
    port = free_port()
    server = ManagedProcess(
        [*GUNICORN, "-w", "1", "-b", f"127.0.0.1:{port}"],
        env=child_env(HOME=UNWRITABLE_HOME, XDG_RUNTIME_DIR=""),
        ready_text="Application startup complete",
        log_path=tmp_path / "gunicorn.log",
    )
    server.start()
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/health/live")
    finally:
        server.stop()
    assert response.status_code == 200
    errors = [line for line in server.lines if "[ERROR]" in line or '"level": "error"' in line]
    assert errors == []
