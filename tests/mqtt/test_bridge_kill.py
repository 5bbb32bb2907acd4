"""SIGKILL of the MQTT bridge → every QoS 1 message stored once.

A private broker (free port, temporary persistence directory) and a private database; the bridge runs as
``python -m apps.cli mqtt-bridge`` subprocesses. A device publishes K single readings with QoS 1 (each answered by
the broker's PUBACK) while the bridge stores them; the bridge is killed with SIGKILL mid-stream (messages in
flight, unacknowledged, others queued), the device keeps publishing, a new bridge process resumes the persistent
session: every reading is stored exactly once and announced by exactly one ReadingsIngested.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import paho.mqtt.client as mqtt
import pytest

from core.config import PROJECT_ROOT
from tests.mqtt.brokers import Device, Mosquitto
from tests.support.cli import cli_environment
from tests.support.db import private_database

pytestmark = pytest.mark.slow

K = 2000
SENSORS = 10
DEADLINE_S = 90.0


def start_bridge(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "apps.cli", "mqtt-bridge"], cwd=PROJECT_ROOT, env=env, stdout=out, stderr=out
        )


async def wait_running(log: Path, proc: subprocess.Popen[bytes]) -> None:
    """Until the bridge logged that it runs (connected and subscribed)."""
    deadline = time.monotonic() + 60
    while "MQTT bridge running" not in (log.read_text() if log.exists() else ""):
        assert proc.poll() is None, f"the bridge exited: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, "the bridge did not start"
        await asyncio.sleep(0.05)


async def count(url: str) -> tuple[int, int]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetchval("SELECT count(*) FROM sensor_readings")
        announced = await conn.fetchval(
            "SELECT coalesce(sum((payload->>'count')::int), 0) FROM outbox WHERE event_type = 'ReadingsIngested'"
        )
        return int(rows), int(announced)
    finally:
        await conn.close()


async def wait_rows(url: str, at_least: int, proc: subprocess.Popen[bytes] | None = None) -> int:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        stored, _ = await count(url)
        if stored >= at_least:
            return stored
        assert proc is None or proc.poll() is None, "the bridge exited"
        assert time.monotonic() < deadline, f"{stored} of {at_least} readings stored after {DEADLINE_S} s"
        await asyncio.sleep(0.02)


@pytest.fixture
def kill_database_url(admin_database_url: str) -> Iterator[str]:
    with private_database(admin_database_url, "sm_mqtt_kill") as url:
        yield url


async def test_sigkill_of_the_bridge_mid_stream_loses_and_doubles_nothing(
    private_broker: Mosquitto, kill_database_url: str, tmp_path: Path
) -> None:
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    url = kill_database_url
    env = cli_environment(
        url,
        SM_MQTT_PORT=str(private_broker.port),
        SM_MQTT_CLIENT_ID="sm-kill-test",
        SM_MQTT_BATCH_SIZE="50",
        SM_MQTT_RECEIVE_MAXIMUM="200",
        SM_LOG_JSON="false",
    )
    logs = [tmp_path / "bridge-1.log", tmp_path / "bridge-2.log"]
    first = start_bridge(env, logs[0])
    second: subprocess.Popen[bytes] | None = None
    dev = Device(private_broker.host, private_broker.port)
    try:
        await wait_running(logs[0], first)
        dev.publish("sm/site-1/warmup/readings", {"value": 0.0, "timestamp": base.isoformat()})
        await wait_rows(url, 1, first)  # subscribed, session created

        infos: list[mqtt.MQTTMessageInfo] = []

        def publish_all() -> None:
            for i in range(K):
                reading = {"value": float(i), "timestamp": (base + timedelta(seconds=i + 1)).isoformat()}
                infos.append(dev.publish(f"sm/site-1/kill-{i % SENSORS}/readings", reading, wait=False))
                if i % 200 == 199:
                    infos[-1].wait_for_publish(10)  # pace the device: at most ~200 messages in flight

        publisher = threading.Thread(target=publish_all, name="device")
        publisher.start()
        stored_at_kill = await wait_rows(url, 1 + K // 4, first)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        stored_after_kill, _ = await count(url)

        second = start_bridge(env, logs[1])
        publisher.join(60)
        assert not publisher.is_alive()
        for info in infos:
            info.wait_for_publish(10)
        assert all(info.is_published() for info in infos), "the broker acknowledged every message"
        await wait_rows(url, 1 + K, second)
        await asyncio.sleep(1.0)  # a late duplicate would show up now
        stored, announced = await count(url)

        conn = await asyncpg.connect(url)
        try:
            stamps = await conn.fetch(
                "SELECT sensor_id, timestamp, value FROM sensor_readings WHERE sensor_id LIKE 'kill-%'"
            )
        finally:
            await conn.close()
    finally:
        dev.close()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
    assert second is not None and second.returncode == 0, logs[1].read_text()[-3000:]

    assert 1 + K // 4 <= stored_at_kill <= stored_after_kill < 1 + K, "the bridge was killed mid-stream"
    assert stored == 1 + K and announced == 1 + K
    expected = {(f"kill-{i % SENSORS}", base + timedelta(seconds=i + 1), float(i)) for i in range(K)}
    assert {(r["sensor_id"], r["timestamp"], r["value"]) for r in stamps} == expected
    assert "session present: True" in logs[1].read_text(), "the second bridge resumed the persistent session"
