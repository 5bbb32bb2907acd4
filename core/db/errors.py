"""Telling a database outage (a 503: retry later) from a bug (a 500), and a value the database refuses (a 422)."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError

from core.errors import ServiceUnavailable

#: SQLSTATEs (or their two-character classes) that mean "the server cannot take this now, retry later":
#: connection exceptions (08), too many connections (53300), operator intervention (57P01 admin shutdown,
#: 57P02 crash shutdown, 57P03 cannot connect now: starting up or in crash recovery).
UNAVAILABLE_SQLSTATE_CLASSES = ("08",)
UNAVAILABLE_SQLSTATES = frozenset({"53300", "57P01", "57P02", "57P03"})
#: Seconds a client is told to wait (``Retry-After``) when the database is unavailable.
RETRY_AFTER_S = 5


def sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE carried by ``exc`` (a SQLAlchemy ``DBAPIError`` or an asyncpg error), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str) and len(state) == 5:
            return state
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return None


def is_database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means the database could not be reached, the connection was lost, or the server refuses
    work for now (starting up, crash recovery, shutting down, too many connections)."""
    if isinstance(exc, OSError | TimeoutError) or (
        isinstance(exc, DBAPIError) and (exc.connection_invalidated or isinstance(exc, InterfaceError))
    ):
        return True
    state = sqlstate(exc)
    return state is not None and (
        state in UNAVAILABLE_SQLSTATES or state.startswith(UNAVAILABLE_SQLSTATE_CLASSES)
    )


def is_data_exception(exc: BaseException) -> bool:
    """True when the database refused a value of the request (SQLSTATE class 22: out of range, NUL in text ...)."""
    state = sqlstate(exc)
    return state is not None and state.startswith("22")


def as_service_unavailable(exc: BaseException, detail: str) -> ServiceUnavailable | None:
    """A ServiceUnavailable (with ``Retry-After``) caused by ``exc`` when it is a database outage, else None."""
    if not is_database_unavailable(exc):
        return None
    error = ServiceUnavailable(detail, headers={"Retry-After": str(RETRY_AFTER_S)})
    error.__cause__ = exc
    return error
