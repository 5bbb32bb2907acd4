"""EventBus.activity(): queued events and running deliveries, coalesced deliveries counted until their run ends."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from core.events.bus import EventBus
from core.events.coalesce import Coalescer
from core.events.types import Event, ReadingsIngested
from tests.support.events import wait_until


def _event() -> ReadingsIngested:
    now = datetime.now(UTC)
    return ReadingsIngested(
        sensor_ids=["s"], count=1, first_timestamp=now, last_timestamp=now, ingest_event_id=uuid.uuid4()
    )


async def test_queued_and_running_with_one_worker() -> None:
    bus = EventBus(None, workers=1, queue_size=10, handler_attempts=1)
    gate = asyncio.Event()

    async def blocked(event: Event) -> None:
        await gate.wait()

    bus.subscribe(ReadingsIngested, blocked, name="test.blocked")
    bus.start()
    try:
        assert bus.activity() == (0, 0)
        deliveries = [await bus.publish(_event()) for _ in range(3)]
        await wait_until(lambda: bus.activity() == (2, 1), timeout=5, what="one running, two queued")
        gate.set()
        await asyncio.gather(*deliveries)
        await bus.join()
        assert bus.activity() == (0, 0)
    finally:
        await bus.stop(timeout=1)


async def test_deliveries_waiting_in_a_coalescer_count_as_running_until_their_run_is_done() -> None:
    bus = EventBus(None, workers=4, queue_size=10, handler_attempts=1)
    gate = asyncio.Event()
    runs: list[int] = []

    async def work(events: list[Event]) -> None:
        await gate.wait()
        runs.append(len(events))

    coalescer: Coalescer[Event] = Coalescer(work)
    bus.subscribe(ReadingsIngested, coalescer.submit, name="test.coalesced")
    bus.start()
    try:
        deliveries = [await bus.publish(_event()) for _ in range(3)]
        # the first delivery's run is blocked; the two others wait in the coalescer for the next run
        await wait_until(lambda: bus.activity() == (0, 3), timeout=5, what="three running deliveries")
        gate.set()
        await asyncio.gather(*deliveries)
        assert runs == [1, 2]
        assert bus.activity() == (0, 0)
    finally:
        await bus.stop(timeout=1)
