"""Engine and session factory. One transaction per unit of work, committed by whoever opened it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from core.config import Settings


def create_engine(settings: Settings, **overrides: object) -> AsyncEngine:
    """An asyncpg engine for ``settings.database_url`` (any PostgreSQL URL form is accepted).

    Raises ConfigurationError in production when DATABASE_URL was not set (``Settings.require_database_url``).
    """
    settings.require_database_url()
    connect_args = {
        "timeout": settings.db_connect_timeout_s,
        "server_settings": {
            "application_name": "smart-maintenance",
            "statement_timeout": str(settings.db_statement_timeout_ms),
            "timezone": "UTC",
        },
    }
    options: dict[str, object] = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "connect_args": connect_args,
    }
    options.update(overrides)
    engine = create_async_engine(settings.async_database_url, **options)
    if "pool_pre_ping" not in overrides:
        ping_when_idle(engine, settings.db_pool_pre_ping_idle_s)
    return engine


def ping_when_idle(engine: AsyncEngine, idle_s: float) -> None:
    """Ping a pooled connection at checkout only when it sat in the pool for ``idle_s`` or more (SQLAlchemy's
    "pessimistic disconnect handling", limited): a failed ping raises ``DisconnectionError`` and the pool retries
    with a new connection. ``pool_pre_ping`` would ping at every checkout: with asyncpg that is
    ``BEGIN; ; ROLLBACK``, three round trips (~0.4 ms) in front of every unit of work."""
    pool = engine.sync_engine

    @event.listens_for(pool, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["sm_checked_in_at"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        returned = record.info.get("sm_checked_in_at")
        if returned is None or time.monotonic() - returned < idle_s:
            return  # just connected, or used a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the server closed it (restart, idle timeout): get a fresh one
            raise DisconnectionError("a pooled connection failed its ping") from exc


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def unit_of_work(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Open a session and a transaction; commit on success, roll back on error.

    Services called inside receive the session and only ``flush``; this context manager is the one place
    that commits for jobs and event deliveries (requests use the same helper through a dependency).
    """
    async with factory() as session, session.begin():
        yield session
