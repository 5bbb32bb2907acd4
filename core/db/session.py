"""Engine and session factory. One transaction per unit of work, committed by whoever opened it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
        "pool_pre_ping": True,
        "connect_args": connect_args,
    }
    options.update(overrides)
    return create_async_engine(settings.async_database_url, **options)


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
