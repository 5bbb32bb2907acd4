"""The pool pings a connection only after it sat idle (``SM_DB_POOL_PRE_PING_IDLE_S``): a connection the server
dropped meanwhile is replaced, not handed to a unit of work; one used a moment ago is not pinged."""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy import text

from core.config import load_settings, to_libpq_url
from core.db.session import create_engine, create_session_factory


async def test_an_idle_connection_dropped_by_the_server_is_replaced(admin_database_url: str) -> None:
    settings = load_settings(database_url=admin_database_url, db_pool_pre_ping_idle_s=0.3, db_pool_size=1)
    engine = create_engine(settings)
    factory = create_session_factory(engine)
    try:
        async with factory() as session:
            pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with factory() as session:  # used a moment ago: no ping, same connection
            assert (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one() == pid
        conn = await asyncpg.connect(to_libpq_url(admin_database_url))
        try:
            assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await conn.close()
        await asyncio.sleep(0.5)  # idle past the threshold: pinged at checkout, found dead, replaced
        async with factory() as session:
            assert (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one() != pid
    finally:
        await engine.dispose()
