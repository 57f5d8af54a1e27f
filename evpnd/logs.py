"""structlog, configured once: JSON lines for journald and files, key=value on a terminal."""

from __future__ import annotations

import logging
import sys

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_LEVELS["error"] = logging.ERROR
_configured = False


def setup_logging(level: str = "info", stream=None, force_json: bool | None = None) -> None:
    """Idempotent. `force_json` overrides the TTY check (tests use it)."""
    global _configured
    stream = stream or sys.stderr
    as_json = force_json if force_json is not None else not stream.isatty()
    renderer = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    _configured = True


def get_logger(name: str, **context: object) -> structlog.typing.FilteringBoundLogger:
    if not _configured:
        setup_logging()
    return structlog.get_logger(name).bind(logger=name, **context)
