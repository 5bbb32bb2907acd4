"""Fixtures of the MQTT bridge's tests: brokers (the machine's on 127.0.0.1:1883, or private ones), settings with a
client id and a topic prefix of each test's own, and the bridge running in the test's event loop."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.ingest.mqtt.bridge import BatchResult
from core.ingest.mqtt.runner import MqttIngest
from core.ingest.service import IngestService
from tests.mqtt.brokers import SHARED, Mosquitto, forget_session, listening, mosquitto
from tests.support.db import session_factory_for


@pytest.fixture(scope="session")
def shared_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """The machine's mosquitto on 127.0.0.1:1883 for the plain tests; a private one when it does not answer."""
    if listening(*SHARED):
        yield SHARED
        return
    with mosquitto(tmp_path_factory.mktemp("mosquitto-shared")) as broker:
        yield broker.host, broker.port


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker of this test's own (free port, temporary persistence directory): for destructive tests."""
    with mosquitto(tmp_path / "mosquitto") as broker:
        yield broker


def bridge_settings(settings: Settings, host: str, port: int, **update: object) -> Settings:
    """``settings`` pointed at the broker, with a client id and a topic prefix of their own (the shared broker
    serves other tests and runs at the same time)."""
    run = uuid.uuid4().hex[:10]
    values: dict[str, object] = {
        "mqtt_host": host,
        "mqtt_port": port,
        "mqtt_url": None,
        "mqtt_client_id": f"sm-test-{run}",
        "mqtt_topic_prefix": f"smtest/{run}",
        "mqtt_session_expiry_s": 60,
        "mqtt_batch_ms": 5.0,
        "mqtt_connect_timeout_s": 5.0,
        "mqtt_retry_base_s": 0.05,
        "mqtt_retry_max_s": 0.5,
    }
    values.update(update)
    if isinstance(values.get("mqtt_password"), str):  # model_copy does not validate
        values["mqtt_password"] = SecretStr(str(values["mqtt_password"]))
    return settings.model_copy(update=values)


@pytest.fixture
def mqtt_settings(settings: Settings, shared_broker: tuple[str, int]) -> Iterator[Settings]:
    configured = bridge_settings(settings, *shared_broker)
    yield configured
    forget_session(*shared_broker, configured.mqtt_client_id)


@pytest.fixture
async def ingest_factory(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with session_factory_for(settings) as factory:
        yield factory


class RunningBridge:
    """The bridge in the test's event loop; ``results`` lists every batch it processed."""

    def __init__(self, settings: Settings, service: IngestService) -> None:
        self.settings = settings
        self.results: list[BatchResult] = []
        self.ingest = MqttIngest(settings, service, on_batch=self.results.append)

    @property
    def prefix(self) -> str:
        return self.settings.mqtt_topic_prefix

    def topic(self, sensor: str, site: str = "site-1", kind: str = "readings") -> str:
        return f"{self.prefix}/{site}/{sensor}/{kind}"

    @property
    def acked(self) -> int:
        return sum(r.acked for r in self.results)


@pytest.fixture
async def running_bridge(
    mqtt_settings: Settings, ingest_factory: async_sessionmaker[AsyncSession]
) -> AsyncIterator[RunningBridge]:
    bridge = RunningBridge(mqtt_settings, IngestService(ingest_factory, mqtt_settings))
    await bridge.ingest.start()
    try:
        yield bridge
    finally:
        await bridge.ingest.stop()
