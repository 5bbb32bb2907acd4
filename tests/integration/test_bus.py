"""EventBus: ordering, bounded queue back-pressure, retries, dead letters, correlation id (real PostgreSQL)."""
# ruff: noqa: F811  (pytest fixtures imported from tests.support.events are redefined as parameters)

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.events.bus import BusError, EventBus
from core.events.types import Event, ReadingsIngested, event_from_row
from core.observability.logging import bind_correlation_id, get_correlation_id
from core.observability.metrics import REGISTRY
from tests.support.events import (  # noqa: F401  (fixtures)
    Recorder,
    events_database_url,
    events_db,
    events_settings,
    make_bus,
    session_factory,
)


def readings_event(n: int = 1) -> ReadingsIngested:
    now = datetime.now(UTC)
    return ReadingsIngested(
        sensor_ids=[f"s-{n}"], count=n, first_timestamp=now, last_timestamp=now, ingest_event_id=uuid.uuid4()
    )


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_single_worker_handles_events_in_publication_order(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    bus = make_bus(session_factory, workers=1)
    recorder = Recorder()
    bus.subscribe(ReadingsIngested, recorder, name="test.order")
    bus.start()
    try:
        events = [readings_event(i) for i in range(50)]
        for event in events:
            await bus.publish(event)
        await bus.join()
        assert recorder.ids == [str(e.event_id) for e in events]
    finally:
        await bus.stop()


async def test_publish_waits_while_the_queue_is_full(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    bus = make_bus(session_factory, queue_size=2, workers=1)
    recorder = Recorder()
    bus.subscribe(ReadingsIngested, recorder, name="test.backpressure")
    await bus.publish(readings_event(1))
    await bus.publish(readings_event(2))
    assert bus.queue_depth == 2
    blocked = asyncio.create_task(bus.publish(readings_event(3)))
    done, _ = await asyncio.wait({blocked}, timeout=0.1)
    assert not done, "publish must wait while the bounded queue is full"
    assert bus.queue_depth == 2
    assert metric("sm_bus_queue_depth_items") == 2
    bus.start()
    try:
        await asyncio.wait_for(blocked, 5)
        await bus.join()
        assert [e.count for e in recorder.events] == [1, 2, 3]
        assert bus.queue_depth == 0
    finally:
        await bus.stop()


def test_the_queue_is_never_unbounded() -> None:
    with pytest.raises(ValueError, match="never unbounded"):
        EventBus(None, queue_size=0)


async def test_failing_handler_is_retried_then_dead_lettered(
    session_factory: async_sessionmaker[AsyncSession], events_db: asyncpg.Connection
) -> None:
    bus = make_bus(session_factory, handler_attempts=4)
    broken = Recorder(fail_times=100, error=ConnectionError)
    healthy = Recorder()
    bus.subscribe(ReadingsIngested, broken, name="test.broken")
    bus.subscribe(ReadingsIngested, healthy, name="test.healthy")
    retries = metric("sm_bus_handler_retries_total", handler="test.broken")
    dead = metric("sm_bus_dead_letters_total", handler="test.broken")
    bus.start()
    try:
        event = readings_event(7)
        delivery = await bus.publish(event)
        await bus.join()
        await delivery  # acknowledged: the dead letter is stored
    finally:
        await bus.stop()

    assert broken.calls == 4
    assert healthy.ids == [str(event.event_id)], "one failing handler does not affect the others"
    rows = await events_db.fetch("SELECT * FROM dead_letters")
    assert len(rows) == 1
    row = rows[0]
    assert row["handler"] == "test.broken"
    assert row["event_type"] == "ReadingsIngested"
    assert row["attempts"] == 4
    assert row["error"] == "ConnectionError: planned failure 4"
    assert row["replayed_at"] is None

    assert event_from_row(row["event_type"], json.loads(row["payload"])) == event
    assert metric("sm_bus_handler_retries_total", handler="test.broken") == retries + 3
    assert metric("sm_bus_dead_letters_total", handler="test.broken") == dead + 1
    assert metric("sm_bus_events_handled_total", handler="test.healthy", result="ok") >= 1


async def test_handler_succeeding_on_a_later_attempt_leaves_no_dead_letter(
    session_factory: async_sessionmaker[AsyncSession], events_db: asyncpg.Connection
) -> None:
    bus = make_bus(session_factory, handler_attempts=5)
    flaky = Recorder(fail_times=2)
    bus.subscribe(ReadingsIngested, flaky, name="test.flaky")
    before = metric("sm_bus_events_handled_total", handler="test.flaky", result="ok")
    bus.start()
    try:
        event = readings_event()
        await bus.publish(event)
        await bus.join()
    finally:
        await bus.stop()
    assert flaky.calls == 3
    assert flaky.ids == [str(event.event_id)]
    assert await events_db.fetchval("SELECT count(*) FROM dead_letters") == 0
    assert metric("sm_bus_events_handled_total", handler="test.flaky", result="ok") == before + 1
    assert metric("sm_bus_handler_latency_seconds_count", handler="test.flaky") >= 3


async def test_handlers_run_with_the_events_correlation_id(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    bus = make_bus(session_factory)
    seen: list[str | None] = []

    async def handler(event: Event) -> None:
        seen.append(get_correlation_id())

    bus.subscribe(ReadingsIngested, handler, name="test.correlation")
    bus.start()
    try:
        with bind_correlation_id("req-123"):
            event = readings_event()
        assert event.correlation_id == "req-123"
        await bus.publish(event)
        await bus.join()
    finally:
        await bus.stop()
    assert seen == ["req-123"]


async def test_publish_to_one_named_handler(session_factory: async_sessionmaker[AsyncSession]) -> None:
    bus = make_bus(session_factory)
    first, second = Recorder(), Recorder()
    bus.subscribe(ReadingsIngested, first, name="test.first")
    bus.subscribe(Event, second, name="test.all")
    with pytest.raises(BusError):
        bus.subscribe(ReadingsIngested, first, name="test.first")
    bus.start()
    try:
        await bus.publish(readings_event(), handler="test.all")
        await bus.join()
        assert (first.calls, second.calls) == (0, 1)
        with pytest.raises(BusError):
            await bus.publish(readings_event(), handler="test.unknown")
    finally:
        await bus.stop()


async def test_stop_drains_the_queue(session_factory: async_sessionmaker[AsyncSession]) -> None:
    bus = make_bus(session_factory, workers=1)
    recorder = Recorder()
    bus.subscribe(ReadingsIngested, recorder, name="test.drain")
    bus.start()
    for i in range(20):
        await bus.publish(readings_event(i))
    await bus.stop(timeout=5)
    assert recorder.calls == 20
    with pytest.raises(BusError):
        await bus.publish(readings_event())


async def test_dead_letter_that_cannot_be_stored_fails_the_delivery(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/closed")
    try:
        bus = make_bus(async_sessionmaker(engine), handler_attempts=1)
        bus.subscribe(ReadingsIngested, Recorder(fail_times=1), name="test.unstorable")
        bus.start()
        delivery = await bus.publish(readings_event())
        await bus.join()
        with pytest.raises(Exception, match="dead letter of test.unstorable not stored"):
            await delivery
        await bus.stop()
    finally:
        await engine.dispose()
