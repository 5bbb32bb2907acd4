"""The bridge against a real broker and the real ingest service (in the test's event loop): readings stored once
with their ReadingsIngested event, rejections published with the HTTP API's reasons, clear start-up errors, and the
credentials and ACL of infrastructure/mosquitto on a private broker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from core.config import PROJECT_ROOT, Settings, to_libpq_url
from core.errors import ValidationFailed
from core.ingest.mqtt.client import BrokerError, PahoBroker
from core.ingest.service import IngestService
from tests.mqtt.brokers import device, mosquitto
from tests.mqtt.conftest import RunningBridge, bridge_settings
from tests.support.cli import run_cli
from tests.support.events import wait_until
from tests.support.mlflow_server import free_port

BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def ts(seconds: float) -> str:
    return (BASE + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


async def rows(settings: Settings, sensor: str) -> list[tuple[datetime, float]]:
    conn = await asyncpg.connect(to_libpq_url(settings.database_url))
    try:
        records = await conn.fetch(
            "SELECT timestamp, value FROM sensor_readings WHERE sensor_id = $1 ORDER BY timestamp", sensor
        )
        return [(r["timestamp"], r["value"]) for r in records]
    finally:
        await conn.close()


async def events_of(settings: Settings, sensor: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(to_libpq_url(settings.database_url))
    try:
        records = await conn.fetch(
            "SELECT payload FROM outbox WHERE event_type = 'ReadingsIngested' AND payload->'sensor_ids' ? $1", sensor
        )
        return [orjson.loads(r["payload"]) for r in records]
    finally:
        await conn.close()


async def test_readings_are_stored_once_with_their_event_and_rejections_are_published(
    running_bridge: RunningBridge, shared_broker: tuple[str, int]
) -> None:
    bridge, settings = running_bridge, running_bridge.settings
    sensor = f"mqtt-{uuid.uuid4().hex[:8]}"
    with device(*shared_broker) as dev:
        dev.subscribe(f"{bridge.prefix}/+/+/rejected")
        dev.publish(bridge.topic(sensor), {"value": 1.0, "timestamp": ts(0), "unit": "°C",
                                           "metadata": {"sensor_type": "temperature"}})  # fmt: skip
        dev.publish(bridge.topic(sensor), [{"value": 2.0, "timestamp": ts(1)}, {"value": "x", "timestamp": ts(2)}])
        dev.publish(bridge.topic(sensor), [{"value": 1.0, "timestamp": ts(0)}, {"value": 3.0, "timestamp": ts(3)}])
        dev.publish(bridge.topic(sensor, site="site-2"), b"[1, 2")
        await wait_until(lambda: bridge.acked >= 4, timeout=20, what="4 messages acknowledged")
        await wait_until(lambda: len(dev.notices()) >= 2, timeout=10, what="2 rejection notices")
        notices = dict(dev.notices())

    assert [v for _, v in await rows(settings, sensor)] == [1.0, 2.0, 3.0]
    assert sum(r.accepted for r in bridge.results) == 3 and sum(r.duplicates for r in bridge.results) == 1
    events = await events_of(settings, sensor)
    assert sum(e["count"] for e in events) == 3  # the same ReadingsIngested as the HTTP path, in the outbox
    assert {e["ingest_event_id"] for e in events} <= {i for r in bridge.results for i in r.event_ids}

    partial = notices[bridge.topic(sensor, kind="rejected")]
    assert partial["status"] == 202 and partial["kept"] == 1 and partial["readings"] == 2
    assert partial["rejected"] == [{"index": 1, "reason": "value: Input should be a valid number"}]
    assert orjson.loads(partial["payload"]) == [{"value": 2.0, "timestamp": ts(1)}, {"value": "x", "timestamp": ts(2)}]
    malformed = notices[bridge.topic(sensor, site="site-2", kind="rejected")]
    assert malformed["status"] == 400 and malformed["detail"].startswith("malformed JSON")
    assert malformed["payload"] == "[1, 2" and malformed["topic"] == bridge.topic(sensor, site="site-2")


async def test_rejections_state_the_reasons_of_the_http_api(
    mqtt_settings: Settings, ingest_factory: Any, shared_broker: tuple[str, int]
) -> None:
    """Unknown sensors (auto-registration off), a unit that does not convert, a reading from the future: the notice
    lists what ``POST /api/v1/data/ingest`` answers for the same body (its 422 ``rejected``)."""
    settings = mqtt_settings.model_copy(update={"auto_register_sensors": False})
    service = IngestService(ingest_factory, settings)
    sensor = f"mqtt-unknown-{uuid.uuid4().hex[:8]}"
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = [{"sensor_id": sensor, "value": 1.0, "timestamp": ts(0)},
            {"sensor_id": sensor, "value": 2.0, "timestamp": future}]  # fmt: skip
    with pytest.raises(ValidationFailed) as http:
        await service.ingest(orjson.dumps(body), api_key_id=1)
    expected = http.value.extra["rejected"]

    bridge = RunningBridge(settings, service)
    await bridge.ingest.start()
    try:
        with device(*shared_broker) as dev:
            dev.subscribe(bridge.topic(sensor, kind="rejected"))
            dev.publish(bridge.topic(sensor), body)
            await wait_until(lambda: bool(dev.notices()), timeout=20, what="the rejection notice")
            [(_, notice)] = dev.notices()
    finally:
        await bridge.ingest.stop()
    assert notice["rejected"] == expected and len(expected) == 2
    assert notice["status"] == 422 and notice["detail"] == "2 of 2 readings are invalid; none stored"
    assert await rows(settings, sensor) == []


async def test_an_unreachable_broker_is_a_clear_error(settings: Settings, database_url: str) -> None:
    port = free_port()
    unreachable = bridge_settings(settings, "127.0.0.1", port)
    broker = PahoBroker(unreachable, __import__("asyncio").Queue())
    with pytest.raises(BrokerError) as error:
        await broker.start()
    assert str(error.value) == f"cannot reach the MQTT broker at mqtt://127.0.0.1:{port} (connection refused)"

    result = run_cli(database_url, "mqtt-bridge", timeout=60, SM_MQTT_PORT=str(port))
    assert result.returncode == 1, result.stderr
    assert f"error: cannot reach the MQTT broker at mqtt://127.0.0.1:{port} (connection refused)" in result.stderr


def shipped_acl() -> str:
    return (PROJECT_ROOT / "infrastructure" / "mosquitto" / "acl").read_text()


async def test_credentials_and_the_shipped_acl(settings: Settings, ingest_factory: Any, tmp_path: Path) -> None:
    """infrastructure/mosquitto/acl on a private broker with passwords: a wrong password is refused at start with
    one line; a site's device publishes its readings and reads its rejections, and can neither publish for another
    site nor read another site's rejections. (Mosquitto 2.0 grants a subscription its ACL denies and then delivers
    nothing, so a bridge user without read access is not refused at start: docs/architecture/mqtt.md.)"""
    users = {"sm-bridge": "bridge-pw", "plant-1": "plant-1-pw", "plant-2": "plant-2-pw"}
    with mosquitto(tmp_path, users=users, acl=shipped_acl()) as broker:
        base: dict[str, Any] = {"mqtt_topic_prefix": "sm", "mqtt_username": "sm-bridge"}
        wrong = bridge_settings(settings, broker.host, broker.port, **base, mqtt_password="nope")
        with pytest.raises(BrokerError, match=r"refused the connection: (Not authorized|Bad user name or password)"):
            await PahoBroker(wrong, __import__("asyncio").Queue()).start()
        configured = bridge_settings(settings, broker.host, broker.port, **base, mqtt_password="bridge-pw")
        bridge = RunningBridge(configured, IngestService(ingest_factory, configured))
        await bridge.ingest.start()
        sensor = f"acl-{uuid.uuid4().hex[:8]}"
        try:
            with (
                device(broker.host, broker.port, username="plant-1", password="plant-1-pw") as plant1,
                device(broker.host, broker.port, username="plant-2", password="plant-2-pw") as plant2,
            ):
                plant1.subscribe("sm/plant-1/+/rejected")
                plant2.subscribe("sm/plant-1/+/rejected")  # another site's: the broker never delivers them
                plant1.publish(f"sm/plant-2/{sensor}/readings", {"value": 9.0, "timestamp": ts(9)})  # not its site
                plant1.publish(f"sm/plant-1/{sensor}/readings", [{"value": 1.0, "timestamp": ts(0)},
                                                                {"value": None, "timestamp": ts(1)}])  # fmt: skip
                await wait_until(lambda: bool(plant1.notices()), timeout=20, what="plant-1's rejection notice")
                await wait_until(lambda: bridge.acked >= 1, timeout=10, what="the message acknowledged")
                [(topic, notice)] = plant1.notices()
                assert topic == f"sm/plant-1/{sensor}/rejected" and notice["kept"] == 1
                assert plant2.notices() == []
        finally:
            await bridge.ingest.stop()
        assert [v for _, v in await rows(configured, sensor)] == [1.0]  # plant-2's topic: dropped by the broker
        assert sum(r.messages for r in bridge.results) == 1
