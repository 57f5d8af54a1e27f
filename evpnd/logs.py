"""structlog, configured once: native journal fields under systemd, JSON lines for files and
pipes, key=value on a terminal."""

from __future__ import annotations

import logging
import os
import sys

import structlog

from evpnd import journald as journal

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_LEVELS["error"] = logging.ERROR
_configured = False


def setup_logging(
    level: str = "info",
    stream=None,
    force_json: bool | None = None,
    journal_socket: str | None = None,
) -> None:
    """Idempotent. `force_json` overrides the TTY check (tests use it).

    Under systemd with stderr connected to the journal (JOURNAL_STREAM), events go to journald
    natively, each key its own field (evpnd/journal.py); `journal_socket` forces that (tests).
    """
    global _configured
    processors: list = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    if journal_socket is None and stream is None and _stderr_is_journal():
        journal_socket = journal.SOCKET
    if journal_socket is not None:
        processors.append(journal.render)
        factory = journal.JournalLoggerFactory(journal.JournalSender(journal_socket))
    else:
        stream = stream or sys.stderr
        as_json = force_json if force_json is not None else not stream.isatty()
        processors.append(
            structlog.processors.JSONRenderer()
            if as_json
            else structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0)
        )
        factory = structlog.PrintLoggerFactory(file=stream)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )
    _configured = True


def _stderr_is_journal() -> bool:
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return journal.connected_to_journal(fd) and os.path.exists(journal.SOCKET)


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


def set_log_level(level: str) -> None:
    """Change the level in place (a reload): the stream and renderer stay as set up."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO))
    )
