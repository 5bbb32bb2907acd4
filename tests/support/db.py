"""Throw-away databases for tests: the project's own administration helpers."""

from core.db.admin import alembic_config, create_database, downgrade, drop_database, upgrade, with_database

__all__ = ["alembic_config", "create_database", "downgrade", "drop_database", "upgrade", "with_database"]
