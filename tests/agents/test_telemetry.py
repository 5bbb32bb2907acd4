"""Telemetry agent: counts readings from ReadingsIngested, once per event (redeliveries ignored)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from core.config import Settings
from core.events.bus import EventBus
from core.events.types import ReadingsIngested
from core.observability import agent as telemetry
from core.observability.metrics import REGISTRY
from core.runtime.handlers import register_handlers
from tests.support.runtime import runtime_for


def event(count: int) -> ReadingsIngested:
    now = datetime.now(UTC)
    return ReadingsIngested(
        sensor_ids=["a", "b"],
        count=count,
        first_timestamp=now - timedelta(minutes=1),
        last_timestamp=now,
        ingest_event_id=uuid.uuid4(),
    )


def counted() -> float:
    return REGISTRY.get_sample_value("sm_bus_readings_ingested_total") or 0.0


async def test_counts_readings_once_per_event() -> None:
    handler = telemetry.ReadingsIngestedCounter()
    before = counted()
    first, second = event(10), event(5)
    await handler(first)
    await handler(second)
    await handler(first)  # at-least-once redelivery
    assert handler.readings == 15
    assert counted() == before + 15


async def test_remembers_a_bounded_number_of_events() -> None:
    handler = telemetry.ReadingsIngestedCounter(max_remembered=2)
    events = [event(1) for _ in range(3)]
    for e in events:
        await handler(e)
    await handler(events[0])  # forgotten: the memory is bounded
    await handler(events[2])  # remembered
    assert handler.readings == 4


def test_registry_subscribes_the_telemetry_handler(settings: Settings) -> None:
    bus = EventBus(None)
    subscriptions = register_handlers(bus, runtime_for(settings))
    assert (telemetry.HANDLER_NAME, "ReadingsIngested") in [(s.name, s.event_type) for s in subscriptions]
    assert bus.has_handler(telemetry.HANDLER_NAME)
