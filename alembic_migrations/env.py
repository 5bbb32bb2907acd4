"""Alembic environment (async, asyncpg).

URL: the ``sqlalchemy.url`` option when the caller set one (tests, scripts), else
``get_settings().async_database_url``; plain ``postgresql://`` URLs (including the unix-socket form
``postgresql://postgres:@/postgres?host=/socket/dir``) are normalised with ``core.config.to_async_url``.
A caller may also pass an open synchronous connection in ``config.attributes["connection"]``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import core.models  # noqa: F401  (registers every table on the metadata)
from core.config import get_settings, to_async_url
from core.db.base import Base

config = context.config

# Configure logging from alembic.ini only when nobody else has (the CLI); an application or pytest that
# runs migrations in-process keeps its own logging setup.
if config.config_file_name is not None and not logging.getLogger().handlers:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata

#: Objects that exist in the database but not in the metadata, on purpose.
NON_METADATA_OBJECTS = frozenset({"sensor_readings_hourly"})


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return not (type_ == "table" and reflected and compare_to is None and name in NON_METADATA_OBJECTS)


def database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        settings = get_settings()
        settings.require_database_url()
        url = settings.async_database_url
    return to_async_url(url)


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
        include_object=include_object,
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=database_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_async_engine(
        database_url(),
        poolclass=pool.NullPool,
        connect_args={
            "server_settings": {"application_name": "smart-maintenance-alembic", "timezone": "UTC"}
        },
    )
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def _run(coro: Coroutine[Any, Any, None]) -> None:
    """asyncio.run, or in a worker thread when called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001  (re-raised in the calling thread)
            errors.append(exc)

    thread = threading.Thread(target=target, name="alembic-migrations")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        _run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
