"""The end-to-end maintenance-loop tests (tests/e2e/test_maintenance_loop.py) with their readings arriving over MQTT.

The tests of that module run unchanged, on the same API fixture (``running``: every bus it is run with); only
their ``ingest(running, readings)`` helper is replaced for the test: instead of ``POST /api/v1/data/ingest`` the
readings are published (one message, QoS 1) to ``<prefix>/site-e2e/<sensor>/readings`` of the machine's broker,
and the bridge — running in the test's event loop on the API runtime's own ingest service — stores them. The helper
returns the ``ingest_event_id`` of the batch that held the message, as the HTTP answer's ``event_id`` would be,
after checking that the bridge stored or de-duplicated every reading and refused none.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest

from apps.api.deps import app_runtime
from core.ingest.mqtt.bridge import BatchResult
from core.ingest.mqtt.runner import MqttIngest
from tests.e2e import test_maintenance_loop as loop
from tests.e2e.test_maintenance_loop import Running
from tests.mqtt.brokers import Device, forget_session
from tests.mqtt.conftest import bridge_settings

pytestmark = pytest.mark.slow
# The module's fixtures, used here as they are (the NATS variant of ``running``, when it has one, needs its server).
e2e_database_url = loop.e2e_database_url
e2e_settings = loop.e2e_settings
running = loop.running
e2e_nats = getattr(loop, "e2e_nats", None)

Ingest = Callable[[Running, list[dict[str, Any]]], Awaitable[str]]


@pytest.fixture
async def over_mqtt(
    running: Running, shared_broker: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[None]:
    """The module's ``ingest`` helper publishes over MQTT to a bridge on the API runtime's ingest service."""
    settings = bridge_settings(running.settings, *shared_broker)
    results: asyncio.Queue[BatchResult] = asyncio.Queue()
    bridge = MqttIngest(settings, app_runtime(running.app).ingest.service, on_batch=results.put_nowait)
    await bridge.start()
    dev = Device(*shared_broker)
    dev.subscribe(f"{settings.mqtt_topic_prefix}/+/+/rejected")

    async def ingest_over_mqtt(running: Running, readings: list[dict[str, Any]]) -> str:
        [sensor] = {r["sensor_id"] for r in readings}
        dev.publish(f"{settings.mqtt_topic_prefix}/site-e2e/{sensor}/readings", orjson.dumps(readings))
        result = await asyncio.wait_for(results.get(), loop.DEADLINE_S)
        assert result.messages == 1 and result.acked == 1, result
        assert result.rejected_readings == 0 and result.notices == [], result.notices
        assert result.accepted + result.duplicates == len(readings), result
        [event_id] = result.event_ids
        return event_id

    monkeypatch.setattr(loop, "ingest", ingest_over_mqtt)
    try:
        yield
    finally:
        dev.close()
        await bridge.stop()
        forget_session(*shared_broker, settings.mqtt_client_id)
    assert dev.notices() == [], "no message was rejected"


async def test_fault_to_work_order_to_label_over_mqtt(running: Running, over_mqtt: None) -> None:
    await loop.test_fault_to_work_order_to_label_through_http(running)


async def test_agents_are_idempotent_under_duplicate_delivery_over_mqtt(running: Running, over_mqtt: None) -> None:
    await loop.test_agents_are_idempotent_under_duplicate_delivery(running)


async def test_a_fault_returning_while_the_work_order_is_open_attaches_to_it_over_mqtt(
    running: Running, over_mqtt: None
) -> None:
    await loop.test_a_fault_returning_while_the_work_order_is_open_attaches_to_it(running)
