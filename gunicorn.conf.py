"""gunicorn's configuration for production (`make serve`, the Dockerfile's CMD): uvicorn workers,
graceful shutdown long enough for a turn to finish, and Prometheus's multiprocess mode. Every
value can be overridden on the command line; environment variables give the defaults."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from graphs.settings import Settings
from serving.graceful_timeout import graceful_timeout_seconds

SETTINGS = Settings()
bind = f"{SETTINGS.host}:{SETTINGS.port}"
workers = SETTINGS.web_concurrency
worker_class = "serving.gunicorn_worker.GracefulUvicornWorker"
graceful_timeout = graceful_timeout_seconds(SETTINGS)
timeout = graceful_timeout + 30
keepalive = 5
accesslog = None  # graphgate writes its own JSON access line per request
# gunicorn's control socket (for `gunicornc`, since 25.1) lives in $HOME/.gunicorn by default:
# under the chart's read-only root file system every start logged "Control server error", and
# every gunicorn of one user on a machine shares that one path. graphgate is run by its
# process manager and signals, not by gunicornc.
control_socket_disable = True

# Each worker writes its metrics here. prometheus_client reads this from the environment when
# it is first imported, and gunicorn imports the worker class (and with it the metrics) before
# any hook runs: it is set as this file is read. A folder made here goes when the master exits
# (every start left one in /tmp); one the operator names stays.
MADE_METRICS_DIR: str | None = None
METRICS_DIR = SETTINGS.prometheus_multiproc_dir
if METRICS_DIR is None:
    METRICS_DIR = MADE_METRICS_DIR = tempfile.mkdtemp(prefix="graphgate-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = METRICS_DIR


def on_starting(server: Any) -> None:
    """Refuse an unsafe start (`refuse_unsafe_gunicorn`); then start with no metrics files from
    an earlier run."""
    try:
        refuse_unsafe_gunicorn(server)
    except BaseException:
        on_exit(server)
        raise
    shutil.rmtree(METRICS_DIR, ignore_errors=True)
    os.makedirs(METRICS_DIR, exist_ok=True)


def refuse_unsafe_gunicorn(server: Any) -> None:
    """Refuse several workers without Redis (each would keep its own sessions and limits), a
    graceful timeout (from any source) shorter than a turn, and any configuration the app itself
    would refuse."""
    from serving.graceful_timeout import graceful_timeout_problem
    from serving.startup_checks import refuse_unsafe_start

    settings = SETTINGS
    if server.cfg.workers > 1 and settings.resolved_redis_url is None:
        raise SystemExit(
            f"graphgate refuses to start: {server.cfg.workers} workers without Redis would each "
            "keep their own sessions and limits; set REDIS_URL or WEB_CONCURRENCY=1."
        )
    problem = graceful_timeout_problem(server.cfg.graceful_timeout, settings)
    if problem:
        raise SystemExit(f"graphgate refuses to start: {problem}")
    refuse_unsafe_start(settings)


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges (in-flight requests, open streams)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    """Remove the metrics folder made for this run (an operator's own is left alone)."""
    if MADE_METRICS_DIR is not None:
        shutil.rmtree(MADE_METRICS_DIR, ignore_errors=True)
