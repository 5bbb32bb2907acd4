"""Process-wide logging: one JSON object per line (or plain text), with the request's correlation id.

``configure_logging(settings)`` installs a single handler on the root logger and routes uvicorn's loggers
through it, so every line of the process (ours and the libraries') has the same shape::

    {"timestamp": "2026-11-26T06:15:00.123+00:00", "level": "INFO", "logger": "apps.api.access",
     "message": "GET /health 200 (1.2 ms)", "correlation_id": "4f0c…", "method": "GET", ...}

The correlation id comes from a context variable set by the API's request middleware (and, later, by the event
bus for each delivery); a filter on the handler copies it onto every record emitted in that context.
Calling ``configure_logging`` again replaces the handler it installed before (idempotent).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from core.config import Settings

#: Correlation id of the unit of work being handled (request, event delivery, job); None outside of one.
correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)

#: Loggers of servers and libraries that install their own handlers (uvicorn; ``import mlflow`` takes over
#: mlflow, sqlalchemy.engine, alembic and huey with propagate=False): their handlers are removed and their
#: records go through the root handler. A library imported *after* configure_logging may take them over
#: again; call configure_logging once more after such an import (it is idempotent).
#: Value: the level floor to set (None = inherit the root level). sqlalchemy.engine must stay at WARNING:
#: at INFO it logs every SQL statement.
ROUTED_LOGGERS: dict[str, int | None] = {
    "uvicorn": None,
    "uvicorn.error": None,
    "uvicorn.asgi": None,
    "fastapi": None,
    "mlflow": None,
    "alembic": None,
    "sqlalchemy": logging.WARNING,
    "sqlalchemy.engine": logging.WARNING,
    "huey": logging.WARNING,
}
#: Silenced: the API's request middleware writes the access log (with correlation id and duration) instead.
SILENCED_LOGGERS = ("uvicorn.access",)
#: Record attributes never written as extras (uvicorn's ANSI-coloured duplicate of the message).
EXTRA_RESERVED_ATTRS = ("color_message",)

_HANDLER_MARK = "_sm_handler"
PLAIN_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(correlation_id)s] %(message)s"


def get_correlation_id() -> str | None:
    return correlation_id_var.get()


@contextmanager
def bind_correlation_id(value: str | None) -> Iterator[None]:
    """Run a block with ``value`` as the correlation id of every log line it emits."""
    token = correlation_id_var.set(value)
    try:
        yield
    finally:
        correlation_id_var.reset(token)


class CorrelationIdFilter(logging.Filter):
    """Adds ``correlation_id`` (from the context variable) to every record that does not carry one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "correlation_id", None) is None:
            record.correlation_id = correlation_id_var.get()
        return True


class JsonLineFormatter(JsonFormatter):
    """python-json-logger with our field names and a UTC ISO 8601 timestamp as the first key."""

    def __init__(self) -> None:
        super().__init__(
            ["levelname", "name", "message", "correlation_id"],
            rename_fields={"levelname": "level", "name": "logger"},
            reserved_attrs=[*RESERVED_ATTRS, *EXTRA_RESERVED_ATTRS],
            json_ensure_ascii=False,
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["timestamp"] = format_timestamp(record.created)
        super().add_fields(log_data, record, message_dict)


class PlainFormatter(logging.Formatter):
    """Human-readable lines for a terminal: UTC timestamp, level, logger, correlation id, message."""

    def __init__(self) -> None:
        super().__init__(PLAIN_FORMAT)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return format_timestamp(record.created)

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "correlation_id", None) is None:
            record.correlation_id = "-"
            try:
                return super().format(record)
            finally:
                record.correlation_id = None
        return super().format(record)


def format_timestamp(created: float) -> str:
    return datetime.fromtimestamp(created, tz=UTC).isoformat(timespec="milliseconds")


def _level(name: str) -> int:
    value = logging.getLevelName(name.upper())
    return value if isinstance(value, int) else logging.INFO


def configure_logging(settings: Settings, *, stream: IO[str] | None = None) -> logging.Handler:
    """Install (or replace) the process's log handler according to ``settings``; returns the handler.

    ``stream`` defaults to stderr; tests pass a buffer to capture the lines.
    """
    root = logging.getLogger()
    remove_logging_handlers()

    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonLineFormatter() if settings.log_json else PlainFormatter())
    handler.addFilter(CorrelationIdFilter())
    setattr(handler, _HANDLER_MARK, True)

    level = _level(settings.log_level)
    root.addHandler(handler)
    root.setLevel(level)
    for name, floor in ROUTED_LOGGERS.items():
        logger = logging.getLogger(name)
        for existing in list(logger.handlers):
            logger.removeHandler(existing)
        logger.propagate = True
        logger.setLevel(logging.NOTSET if floor is None or level > floor else floor)
    for name in SILENCED_LOGGERS:
        logger = logging.getLogger(name)
        for existing in list(logger.handlers):
            logger.removeHandler(existing)
        logger.propagate = False
    # Chatty libraries: keep their warnings, drop their debug noise unless asked for it.
    for name in ("httpx", "httpcore", "asyncio", "alembic.runtime.plugins"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING) if level > logging.DEBUG else level)
    logging.captureWarnings(True)
    return handler


def remove_logging_handlers() -> None:
    """Remove the handler(s) ``configure_logging`` installed (used on reconfiguration and by tests)."""
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, _HANDLER_MARK, False):
            root.removeHandler(existing)
            existing.close()
    logging.captureWarnings(False)


__all__ = [
    "CorrelationIdFilter",
    "JsonLineFormatter",
    "PlainFormatter",
    "bind_correlation_id",
    "configure_logging",
    "correlation_id_var",
    "get_correlation_id",
    "remove_logging_handlers",
]
