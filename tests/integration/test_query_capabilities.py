"""The query repository asks the database whether TimescaleDB and the hourly aggregate exist once per database
and TTL, not on every bucketed request."""

from __future__ import annotations

from sqlalchemy import event

from core.config import Settings
from core.db import capabilities
from core.db.session import create_engine, create_session_factory, unit_of_work
from core.queries import repository as queries


async def test_capabilities_are_asked_once_per_database_and_ttl(settings: Settings, monkeypatch) -> None:
    monkeypatch.setattr(capabilities, "_cache", {})
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        if "pg_extension" in statement:
            statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        factory = create_session_factory(engine)
        answers = []
        for _ in range(3):
            async with unit_of_work(factory) as session:
                answers.append(await queries.QueryRepository(session).capabilities())
        assert len(statements) == 1
        assert answers[0] == answers[1] == answers[2]

        monkeypatch.setattr(capabilities, "CAPABILITIES_TTL_S", 0.0)
        async with unit_of_work(factory) as session:
            await queries.QueryRepository(session).capabilities()
        assert len(statements) == 2
    finally:
        await engine.dispose()
