"""Regression: the open-or-count upsert of an unresolved alert keeps working once asyncpg's prepared statement
switches to a generic plan (PostgreSQL cannot infer the partial unique index from a bound predicate; found by
`make bench-loop`: alerts stopped opening after a few hundred batches)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import text

from core.alerts.repository import AlertingRepository
from tests.support.events import (  # noqa: F401 - fixtures
    events_database_url,
    events_settings,
    session_factory,
)


async def test_upsert_unresolved_survives_the_generic_plan(session_factory) -> None:  # noqa: F811
    tag = uuid.uuid4().hex[:8]
    async with session_factory() as session, session.begin():
        # one connection: the same prepared statement is executed well past PostgreSQL's five custom plans
        await session.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
        repo = AlertingRepository(session)
        for i in range(8):
            sensor = f"upsert-{tag}-{i}"
            await session.execute(
                text("INSERT INTO sensors (sensor_id, type, status) VALUES (:s, 'temperature', 'active')"),
                {"s": sensor},
            )
            alert_id, opened, incident = await repo.upsert_unresolved(sensor, "r", "low", datetime.now(UTC))
            assert opened and incident is None
            again, opened_again, _ = await repo.upsert_unresolved(sensor, "r", "low", datetime.now(UTC))
            assert (again, opened_again) == (alert_id, False)
