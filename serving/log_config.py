"""Logging: one JSON object per line for every logger (ours, uvicorn's, the libraries'), with
timestamp, level, logger, message and the request's trace id, through structlog's processors.

Secrets never reach a line: no code logs headers or keys, and as a last line of defence the
configured provider keys and the metrics token are replaced wherever they would appear.
"""

from __future__ import annotations

import logging
import logging.config
from typing import Any

import structlog
from structlog.typing import EventDict, Processor

from graphs.settings import Settings

REDACTED = "[redacted]"
# Loggers whose INFO lines repeat what the access line says, or print request URLs.
QUIET_LOGGERS = (
    "httpx",
    "httpx2",
    "httpcore",
    "httpcore2",
    "openai",
    "anthropic",
    "uvicorn.access",
)
# The admins' audit lines (`api/admin/audit.py`) are written whatever LOG_LEVEL says.
AUDIT_LOGGER = "graphgate.audit"


def secret_redactor(secrets: list[str]) -> Processor:
    def redact(logger: Any, method: str, event: EventDict) -> EventDict:
        for key, value in event.items():
            if isinstance(value, str) and any(secret in value for secret in secrets):
                for secret in secrets:
                    value = value.replace(secret, REDACTED)
                event[key] = value
        return event

    return redact


def drop_color_message(logger: Any, method: str, event: EventDict) -> EventDict:
    """uvicorn adds an ANSI-coloured copy of some messages; JSON lines need only one."""
    event.pop("color_message", None)
    return event


def configure_logging(settings: Settings) -> None:
    secrets = [
        key.get_secret_value()
        for key in (settings.openai_api_key, settings.anthropic_api_key, settings.metrics_token)
        if key is not None and key.get_secret_value()
    ]
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        # The process id tells gunicorn's workers apart.
        structlog.processors.CallsiteParameterAdder(
            {structlog.processors.CallsiteParameter.PROCESS}
        ),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            drop_color_message,
            secret_redactor(secrets),
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # uvicorn and gunicorn install handlers of their own; their records go through ours instead.
    for name in ("uvicorn", "uvicorn.error", "gunicorn.error", "gunicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger(AUDIT_LOGGER).setLevel(logging.INFO)
    logging.captureWarnings(True)
