"""Alerting under concurrent delivery: two transactions deciding about the same (sensor, anomaly rule).

Cause of the intermittent e2e failure ``test_agents_are_idempotent_under_duplicate_delivery``: a delivery of
``AnomalyDetected`` read "no unresolved alert" while another transaction was opening the alert; by the time it
checked suppression the opener's work order existed, so it dropped its anomaly as suppressed. The alert counted
3 anomalies instead of 4, and the duplicate delivery of the test then counted the 4th (not idempotent).
The interleaving is forced here: the second delivery must either wait for the first (advisory lock) or, without
the lock, finish on its stale view before the first commits.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg

from core.alerts.service import AlertingService
from core.db.session import unit_of_work
from tests.agents.test_alerting import T0, World, db, world  # noqa: F401 - fixtures
from tests.support.events import (  # noqa: F401 - fixtures
    events_database_url,
    events_settings,
    session_factory,
    wait_until,
)


async def _waiting_for_advisory_lock(conn: asyncpg.Connection) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    )


async def test_an_anomaly_delivered_while_another_transaction_opens_the_alert_is_counted_by_it(
    world: World,  # noqa: F811
    session_factory,  # noqa: F811
) -> None:
    rule = await world.rule("anomaly_score", {"min_score": 1.0}, open_after_k=3, window_minutes=10)
    events = [await world.anomaly(T0 + timedelta(minutes=i)) for i in range(4)]

    async def deliver_last() -> None:
        async with unit_of_work(session_factory) as session:
            await AlertingService(session).on_anomalies(events[3:])

    second: asyncio.Task[None] | None = None
    async with unit_of_work(session_factory) as session:
        outcome = await AlertingService(session).on_anomalies(events[:3])
        assert len(outcome.opened) == 1  # opened, not committed yet
        # the alert's work order (the scheduling agent's, in the loop) exists before the second delivery looks
        await world.conn.execute(
            "INSERT INTO maintenance_tasks (asset_id, title, status) VALUES ($1, 'overheating', 'open')",
            world.asset_id,
        )
        second = asyncio.create_task(deliver_last())
        # either it waits for this transaction, or (the bug) it decided on its stale view and finished
        await wait_until(
            lambda: second.done() or _waiting_for_advisory_lock(world.conn),  # type: ignore[union-attr]
            timeout=10,
            what="the second delivery to wait or finish",
        )
    await asyncio.wait_for(second, timeout=10)

    alerts = await world.alerts()
    assert [(a["rule"], a["status"], a["anomaly_count"]) for a in alerts] == [(rule, "open", 4)]
    linked = await world.conn.fetchval(
        "SELECT count(*) FROM alert_observations WHERE alert_id = $1 AND anomaly_id IS NOT NULL",
        alerts[0]["id"],
    )
    assert linked == 4
    # and a redelivery of every event changes nothing
    before = await world.state()
    for event in events:
        async with unit_of_work(session_factory) as session:
            await AlertingService(session).on_anomalies([event])
    assert await world.state() == before
