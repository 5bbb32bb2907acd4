"""Throw-away databases for tests: the project's own administration helpers, and a migrated private database."""

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.db.admin import alembic_config, create_database, downgrade, drop_database, upgrade, with_database


@contextmanager
def private_database(admin_database_url: str, prefix: str, *, migrate: bool = True) -> Iterator[str]:
    """A new database (migrated to head unless ``migrate`` is False) for one module or test; dropped afterwards."""
    url = create_database(admin_database_url, prefix=prefix)
    try:
        if migrate:
            upgrade(url)
        yield url
    finally:
        drop_database(admin_database_url, url)


__all__ = [
    "alembic_config",
    "create_database",
    "downgrade",
    "drop_database",
    "private_database",
    "upgrade",
    "with_database",
]


@asynccontextmanager
async def session_factory_for(
    settings: Settings, **engine_options: Any
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A session factory on a new engine for ``settings``' database; the engine is disposed afterwards."""
    from core.db.session import create_engine, create_session_factory

    engine = create_engine(settings, **engine_options)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()
