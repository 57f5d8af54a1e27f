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


class LazyLogger:
    """A logger that assembles itself from the configuration current at each call.

    Modules create their loggers at import time, before the daemon calls setup_logging() with
    the configured level and stream; a logger bound at import would keep the defaults.
    """

    __slots__ = ("_context",)

    def __init__(self, context: dict[str, object]) -> None:
        self._context = context

    def bind(self, **values: object) -> LazyLogger:
        return LazyLogger({**self._context, **values})

    def __getattr__(self, method: str) -> object:
        return getattr(structlog.get_logger().bind(**self._context), method)


def get_logger(name: str, **context: object) -> structlog.typing.FilteringBoundLogger:
    if not _configured:
        setup_logging()
    return LazyLogger({"logger": name, **context})  # type: ignore[return-value]
