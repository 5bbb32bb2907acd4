"""Telling a database outage (a 503: retry later) from a bug (a 500)."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError

from core.errors import ServiceUnavailable


def is_database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means the database could not be reached or the connection was lost."""
    return isinstance(exc, OSError | TimeoutError) or (
        isinstance(exc, DBAPIError) and (exc.connection_invalidated or isinstance(exc, InterfaceError))
    )


def as_service_unavailable(exc: BaseException, detail: str) -> ServiceUnavailable | None:
    """A ServiceUnavailable caused by ``exc`` when it is a database outage, else None."""
    if not is_database_unavailable(exc):
        return None
    error = ServiceUnavailable(detail)
    error.__cause__ = exc
    return error
