"""With SM_BUS_URL on NATS the bridge publishes its own events: a reading published over MQTT reaches the JetStream
stream with no API process running (the bridge's outbox relay, woken by its commit)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from core.config import load_settings
from core.events.jetstream import connect
from tests.mqtt.brokers import Device, Mosquitto
from tests.mqtt.test_bridge_kill import start_bridge, wait_running
from tests.support.cli import cli_environment
from tests.support.db import private_database
from tests.support.nats import NatsServer

pytestmark = pytest.mark.slow


@pytest.fixture
def nats_database_url(admin_database_url: str) -> Iterator[str]:
    with private_database(admin_database_url, "sm_mqtt_nats") as url:
        yield url


async def test_the_bridge_relays_its_events_to_jetstream(
    private_broker: Mosquitto, nats_database_url: str, nats: NatsServer, tmp_path: Path
) -> None:
    env = cli_environment(
        nats_database_url,
        SM_MQTT_PORT=str(private_broker.port),
        SM_MQTT_CLIENT_ID="sm-nats-test",
        SM_BUS_URL=nats.url,
        SM_OUTBOX_POLL_INTERVAL_S="30",  # only the commit's wake-up can publish in time
        SM_LOG_JSON="false",
    )
    log = tmp_path / "bridge.log"
    bridge = start_bridge(env, log)
    dev = Device(private_broker.host, private_broker.port)
    try:
        await wait_running(log, bridge)
        started = time.monotonic()
        dev.publish("sm/site-1/nats-1/readings", {"value": 1.5, "timestamp": datetime.now(UTC).isoformat()})
        conn = await asyncpg.connect(nats_database_url)
        try:
            while not await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE event_type = 'ReadingsIngested' AND published_at IS NOT NULL"
            ):
                assert time.monotonic() - started < 20, f"not published: {log.read_text()[-2000:]}"
                await asyncio.sleep(0.05)
        finally:
            await conn.close()
        assert time.monotonic() - started < 10  # woken by the commit, not by the 30 s poll
        settings = load_settings(bus_url=nats.url)
        nc = await connect(settings, "sm-test-probe")
        try:
            info = await nc.jetstream().stream_info(settings.bus_stream)
        finally:
            await nc.close()
        assert info.state.messages == 1
    finally:
        dev.close()
        bridge.terminate()
        bridge.wait(30)
