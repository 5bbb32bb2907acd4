"""OutboxRelay: committed events are published, rolled-back ones never, leftovers after a crash exactly once,
two relays never publish the same row (FOR UPDATE SKIP LOCKED)."""
# ruff: noqa: F811  (pytest fixtures imported from tests.support.events are redefined as parameters)

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.session import unit_of_work
from core.events.outbox import add_to_outbox
from core.events.relay import RELAY_HANDLER_NAME, DeliveryFailed, OutboxRelay
from core.events.types import ReadingsIngested
from tests.support.events import (  # noqa: F401  (fixtures)
    Recorder,
    events_database_url,
    events_db,
    events_settings,
    make_bus,
    session_factory,
    wait_until,
)


class Rollback(Exception):
    pass


def readings_event(n: int = 1) -> ReadingsIngested:
    now = datetime.now(UTC)
    return ReadingsIngested(
        sensor_ids=[f"s-{n}"], count=n, first_timestamp=now, last_timestamp=now, ingest_event_id=uuid.uuid4()
    )


async def commit_events(factory: async_sessionmaker[AsyncSession], events: list[ReadingsIngested]) -> None:
    async with unit_of_work(factory) as session:
        for event in events:
            await add_to_outbox(session, event)


async def unpublished(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))


async def test_event_in_a_committed_transaction_is_published(
    session_factory: async_sessionmaker[AsyncSession], events_db: asyncpg.Connection
) -> None:
    bus = make_bus(session_factory)
    recorder = Recorder()
    bus.subscribe(ReadingsIngested, recorder, name="test.relay.committed")
    relay = OutboxRelay(session_factory, bus, poll_interval_s=30)  # long poll: the commit must wake it
    bus.start()
    relay.start()
    try:
        event = readings_event()
        await wait_until(lambda: relay.passes >= 1, what="the start-up pass")
        passes = relay.passes
        await commit_events(
            session_factory, [event]
        )  # no notify(): the after_commit listener wakes the relay
        await wait_until(lambda: len(recorder.events) == 1, timeout=10, what="the event to be handled")
        assert relay.passes <= passes + 1, "handled by the woken pass, not a poll (the poll interval is 30 s)"
        assert recorder.events == [event]
        await wait_until(_zero_unpublished(events_db), what="the row to be marked published")
        row = await events_db.fetchrow("SELECT event_type, published_at FROM outbox")
        assert row["event_type"] == "ReadingsIngested" and row["published_at"] is not None
    finally:
        await relay.stop()
        await bus.stop()


def _zero_unpublished(conn: asyncpg.Connection):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return await unpublished(conn) == 0

    return check


async def test_event_in_a_rolled_back_transaction_is_never_published(
    session_factory: async_sessionmaker[AsyncSession], events_db: asyncpg.Connection
) -> None:
    bus = make_bus(session_factory, workers=1)
    recorder = Recorder()
    bus.subscribe(ReadingsIngested, recorder, name="test.relay.rollback")
    relay = OutboxRelay(session_factory, bus, poll_interval_s=0.05)
    bus.start()
    relay.start()
    try:
        discarded, marker = readings_event(1), readings_event(2)
        with pytest.raises(Rollback):
            async with unit_of_work(session_factory) as session:
                await add_to_outbox(session, discarded)
                raise Rollback
        await commit_events(session_factory, [marker])
        relay.notify()
        await wait_until(lambda: len(recorder.events) == 1, what="the committed marker event")
        assert recorder.events == [marker]
        assert await events_db.fetchval("SELECT count(*) FROM outbox") == 1
    finally:
        await relay.stop()
        await bus.stop()


async def test_rows_left_by_a_crash_are_published_exactly_once_at_start_up(
    session_factory: async_sessionmaker[AsyncSession], events_db: asyncpg.Connection
) -> None:
    # "Crash": the transaction committed, but no relay ever published its rows.
    events = [readings_event(i) for i in range(25)]
    await commit_events(session_factory, events)
    assert await unpublished(events_db) == 25

    bus = make_bus(session_factory)
    recorder = Recorder()
    bus.subscribe(ReadingsIngested, recorder, name="test.relay.crash")
    relay = OutboxRelay(session_factory, bus, poll_interval_s=0.05, batch_size=10)
    bus.start()
    relay.start()  # no notify(): start-up alone publishes leftovers
    try:
        await wait_until(lambda: relay.published_total >= 25, what="the leftovers to be published")
        assert await unpublished(events_db) == 0
        await bus.join()
        assert await relay.run_once() == 0, "nothing is left to republish"
        assert relay.published_total == 25
    finally:
        await relay.stop()
        await bus.stop()
    assert Counter(recorder.ids) == Counter(str(e.event_id) for e in events)
    assert max(Counter(recorder.ids).values()) == 1


async def test_two_relays_never_publish_the_same_row(
    session_factory: async_sessionmaker[AsyncSession], events_db: asyncpg.Connection
) -> None:
    events = [readings_event(i) for i in range(300)]
    await commit_events(session_factory, events)
    recorder = Recorder()
    buses = [make_bus(session_factory, workers=2), make_bus(session_factory, workers=2)]
    relays = []
    for i, bus in enumerate(buses):
        bus.subscribe(ReadingsIngested, recorder, name=f"test.relay.concurrent.{i}")
        bus.start()
        relays.append(OutboxRelay(session_factory, bus, batch_size=7))
    try:
        counts = await asyncio.gather(
            *(relay.drain() for relay in relays), *(relay.drain() for relay in relays)
        )
    finally:
        for bus in buses:
            await bus.stop()
    assert sum(counts) == 300
    assert relays[0].published_total > 0 and relays[1].published_total > 0, "both relays took part"
    seen = Counter(recorder.ids)
    assert len(seen) == 300 and max(seen.values()) == 1
    assert await unpublished(events_db) == 0


async def test_failed_handler_does_not_block_the_row(
    session_factory: async_sessionmaker[AsyncSession], events_db: asyncpg.Connection
) -> None:
    bus = make_bus(session_factory, handler_attempts=2)
    bus.subscribe(ReadingsIngested, Recorder(fail_times=10), name="test.relay.failing")
    bus.start()
    relay = OutboxRelay(session_factory, bus)
    try:
        await commit_events(session_factory, [readings_event()])
        assert await relay.drain() == 1
    finally:
        await bus.stop()
    assert await unpublished(events_db) == 0
    row = await events_db.fetchrow("SELECT handler, attempts FROM dead_letters")
    assert (row["handler"], row["attempts"]) == ("test.relay.failing", 2)


async def test_rows_that_cannot_be_decoded_are_dead_lettered(
    session_factory: async_sessionmaker[AsyncSession], events_db: asyncpg.Connection
) -> None:
    await events_db.execute(
        "INSERT INTO outbox (event_type, payload) VALUES ('NoSuchEvent', '{}'), ('ReadingsIngested', '{}')"
    )
    bus = make_bus(session_factory)
    bus.start()
    relay = OutboxRelay(session_factory, bus)
    try:
        assert await relay.drain() == 2
    finally:
        await bus.stop()
    rows = await events_db.fetch("SELECT event_type, handler, error FROM dead_letters ORDER BY id")
    assert [(r["event_type"], r["handler"]) for r in rows] == [
        ("NoSuchEvent", RELAY_HANDLER_NAME),
        ("ReadingsIngested", RELAY_HANDLER_NAME),
    ]
    assert rows[0]["error"].startswith("UnknownEventType")
    assert rows[1]["error"].startswith("ValidationError")


async def test_batch_is_not_marked_published_when_its_delivery_fails(
    session_factory: async_sessionmaker[AsyncSession], events_db: asyncpg.Connection
) -> None:
    """A bus stopped with the event still queued cancels the delivery: the row stays for the next relay."""
    bus = make_bus(session_factory)  # never started: the event waits in the queue
    relay = OutboxRelay(session_factory, bus)
    await commit_events(session_factory, [readings_event()])
    batch = asyncio.create_task(relay.run_once())
    await wait_until(lambda: bus.queue_depth == 1, what="the event to be queued")
    await bus.stop()
    with pytest.raises(DeliveryFailed, match="stays unpublished"):
        await batch
    assert await unpublished(events_db) == 1


CRASHING_PROCESS = """
import asyncio, os, sys
from core.config import load_settings
from core.db.session import create_engine, create_session_factory, unit_of_work
from core.events.bus import EventBus
from core.events.outbox import add_to_outbox
from core.events.relay import OutboxRelay
from core.events.types import ReadingsIngested
from datetime import UTC, datetime
import uuid

async def main():
    settings = load_settings(database_url=sys.argv[1])
    factory = create_session_factory(create_engine(settings))
    bus = EventBus(factory, workers=1)
    async def hang(event):
        print("handling", event.event_id, flush=True)
        await asyncio.Event().wait()  # the handler never finishes: the batch is never acknowledged
    bus.subscribe(ReadingsIngested, hang, name="test.crash.hang")
    bus.start()
    relay = OutboxRelay(factory, bus, poll_interval_s=0.05)
    relay.start()
    now = datetime.now(UTC)
    async with unit_of_work(factory) as session:
        for i in range(5):
            await add_to_outbox(session, ReadingsIngested(sensor_ids=["s"], count=i, first_timestamp=now,
                                last_timestamp=now, ingest_event_id=uuid.uuid4()))
    print("committed", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_process_killed_after_commit_and_claim_loses_no_event(
    events_database_url: str,
    session_factory: async_sessionmaker[AsyncSession],
    events_db: asyncpg.Connection,
) -> None:
    """SIGKILL while a relay holds the rows (claimed, published, not acknowledged): the next relay delivers all."""
    import signal
    import sys

    from core.config import PROJECT_ROOT

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CRASHING_PROCESS,
        events_database_url,
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while not any(line.startswith("handling") for line in lines):
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line, (await proc.stderr.read()).decode() if proc.stderr else "no output"
            lines.append(line.decode())
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

    await wait_until(_zero_locks(events_db), what="the killed session's locks to vanish")
    assert await unpublished(events_db) == 5, "nothing was acknowledged by the killed process"
    bus = make_bus(session_factory)
    recorder = Recorder()
    bus.subscribe(ReadingsIngested, recorder, name="test.crash.recovered")
    bus.start()
    try:
        assert await OutboxRelay(session_factory, bus).drain() == 5
    finally:
        await bus.stop()
    assert sorted(e.count for e in recorder.events) == [0, 1, 2, 3, 4]
    assert await unpublished(events_db) == 0


def _zero_locks(conn: asyncpg.Connection):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return not await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
        )

    return check
