"""Throw-away databases for tests: the project's own administration helpers, and a migrated private database."""

from collections.abc import Iterator
from contextlib import contextmanager

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
