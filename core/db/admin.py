"""Database administration: create, migrate and drop databases (tests, benchmarks, the CLI's ``migrate``)."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from alembic import command
from alembic.config import Config

from core.config import PROJECT_ROOT, to_libpq_url


def with_database(url: str, name: str) -> str:
    parts = urlsplit(to_libpq_url(url))
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def _admin(admin_url: str, sql: str) -> None:
    conn = await asyncpg.connect(to_libpq_url(admin_url), timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database(admin_url: str, prefix: str = "sm_test") -> str:
    """Create an empty database with a unique name; return its libpq URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    return with_database(admin_url, name)


def drop_database(admin_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def alembic_config(url: str | None = None) -> Config:
    """Alembic configuration of this project; without ``url`` the migrations use the settings' DATABASE_URL."""
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "alembic_migrations"))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)
