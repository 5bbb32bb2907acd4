"""Alerting under concurrent delivery: two transactions deciding about the same (sensor, anomaly rule).

History: a delivery that read "no unresolved alert" while another transaction was opening the alert decided on
its stale view (it counted its anomaly towards nothing, and a later redelivery counted it: not idempotent). The
interleaving is forced here: the second delivery must wait for the first (advisory lock on the (sensor, rule)
key) and then count its anomaly in the alert the first opened.
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


async def test_a_scored_batch_delivered_while_another_transaction_opens_the_alert_is_counted_by_it(
    world: World,  # noqa: F811
    session_factory,  # noqa: F811
) -> None:
    rule = await world.rule("anomaly_score", {"min_score": 1.0}, open_after_k=3, window_readings=10)
    first = await world.scored(T0, [9.0, 9.0, 9.0], {0: 8.0, 1: 8.0, 2: 8.0})
    last = await world.scored(T0 + timedelta(minutes=3), [9.0], {0: 8.5})

    async def deliver_last() -> None:
        async with unit_of_work(session_factory) as session:
            await AlertingService(session).on_scored(last)

    second: asyncio.Task[None] | None = None
    async with unit_of_work(session_factory) as session:
        outcome = await AlertingService(session).on_scored(first)
        assert len(outcome.opened) == 1  # opened, not committed yet
        second = asyncio.create_task(deliver_last())
        # either it waits for this transaction, or (the bug) it decided on its stale view and finished
        await wait_until(
            lambda: second.done() or _waiting_for_advisory_lock(world.conn),  # type: ignore[union-attr]
            timeout=10,
            what="the second delivery to wait or finish",
        )
        assert not second.done()
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
    for event in (first, last, first):
        async with unit_of_work(session_factory) as session:
            await AlertingService(session).on_scored(event)
    assert await world.state() == before
