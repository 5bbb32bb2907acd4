"""Fixtures of the JetStream bus tests: a database and a private NATS server per test, the API served on loopback
with ``SM_BUS_URL`` set, workers as ``python -m apps.cli worker`` subprocesses (or in this process)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn

from apps.api.main import create_app
from core.config import PROJECT_ROOT, Settings, load_settings, to_libpq_url
from tests.support.cli import cli_environment
from tests.support.db import private_database
from tests.support.events import wait_until

INGEST = "/api/v1/data/ingest"
BASE = datetime.now(UTC).replace(second=0, microsecond=0)
DEADLINE_S = 90.0


@pytest.fixture
def bus_database_url(admin_database_url: str) -> Iterator[str]:
    with private_database(admin_database_url, "sm_bus") as url:
        yield url


def bus_settings(database_url: str, bus_url: str, tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "database_url": database_url,
        "mlflow_tracking_uri": "http://127.0.0.1:9",  # closed: the robust_z baseline
        "ready_check_mlflow": False,
        "data_dir": tmp / "data",
        "log_dir": tmp / "logs",
        "db_pool_size": 5,
        "alert_no_data_check_interval_s": 0,
        "bus_url": bus_url,
        "bus_partitions": 4,
        "bus_lease_ttl_s": 3.0,
        "bus_ack_wait_s": 5.0,
        "rate_limit": "100000/second",
        "worker_nice": 2,  # the mechanism, tested; the default (10) would slow the fault tests on a busy machine
    }
    values.update(overrides)
    return load_settings(**values)


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment of a worker subprocess with the same bus and database as ``settings``."""
    assert settings.database_url is not None and settings.bus_url is not None
    return cli_environment(
        settings.database_url,
        SM_BUS_URL=settings.bus_url,
        SM_BUS_STREAM=settings.bus_stream,
        SM_BUS_PARTITIONS=str(settings.bus_partitions),
        SM_BUS_STREAM_REPLICAS=str(settings.bus_stream_replicas),
        SM_BUS_LEASE_TTL_S=str(settings.bus_lease_ttl_s),
        SM_BUS_ACK_WAIT_S=str(settings.bus_ack_wait_s),
        SM_MLFLOW_TRACKING_URI=settings.mlflow_tracking_uri,
        SM_READY_CHECK_MLFLOW="false",
        SM_ALERT_NO_DATA_CHECK_INTERVAL_S="0",
        SM_DATA_DIR=str(settings.data_dir),
        SM_LOG_DIR=str(settings.log_dir),
        SM_LOG_LEVEL="INFO",
        SM_WORKER_NICE=str(settings.worker_nice),
    )


def start_worker(settings: Settings, log: Path, *agents: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "apps.cli", "worker"]
    if agents:
        cmd += ["--agents", ",".join(agents)]
    with log.open("ab") as out:
        return subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=worker_env(settings), stdout=out, stderr=out)


@dataclass
class Api:
    client: httpx.AsyncClient
    settings: Settings

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.settings.api_key.get_secret_value()}

    async def ingest(self, readings: list[dict[str, Any]]) -> None:
        response = await self.client.post(INGEST, json=readings, headers=self.headers)
        assert response.status_code == 202, response.text

    async def idle(self) -> bool:
        response = await self.client.get("/api/v1/admin/events", headers=self.headers)
        if response.status_code == 503:  # the bus (a restarting server, a cluster electing a leader): not idle
            return False
        assert response.status_code == 200, response.text
        return bool(response.json()["idle"])

    async def settle(self, timeout: float = DEADLINE_S) -> None:
        """Idle (outbox published, every consumer acknowledged everything) three answers in a row."""
        streak = 0

        async def idle() -> bool:
            nonlocal streak
            streak = streak + 1 if await self.idle() else 0
            return streak >= 3

        await wait_until(idle, timeout=timeout, what="the workers to settle")


@asynccontextmanager
async def serve_api(settings: Settings) -> AsyncIterator[Api]:
    app = create_app(settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await wait_until(lambda: server.started or task.done(), timeout=20, what="uvicorn to start")
        assert server.started, "uvicorn did not start"
        port = sock.getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            yield Api(client, settings)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)
        sock.close()


def ts(minutes_ago: float) -> str:
    return (BASE - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


def warmup_and_fault(sensor: str, *, warmup: int = 40, start: int = 300) -> list[dict[str, Any]]:
    """One reading a minute around 20 °C, then four far above the 85 °C rule: one alert, one work order."""
    normal = [
        {
            "sensor_id": sensor,
            "timestamp": ts(start - i),
            "value": 20.0 + 0.1 * ((i * 7) % 5 - 2),
            "unit": "°C",
            "metadata": {"sensor_type": "temperature"},
        }
        for i in range(warmup)
    ]
    fault = [
        {"sensor_id": sensor, "timestamp": ts(start - warmup - i), "value": 95.0 + i, "unit": "°C"} for i in range(4)
    ]
    return normal + fault


def sensor_names(prefix: str, count: int) -> list[str]:
    run = uuid.uuid4().hex[:6]
    return [f"{prefix}-{run}-{i:03d}" for i in range(count)]


async def effects(database_url: str, sensors: list[str]) -> dict[str, tuple[int, int, int]]:
    """sensor → (alerts of the temperature-high rule, open or not; work orders; anomalies)."""
    conn = await asyncpg.connect(to_libpq_url(database_url))
    try:
        alerts = dict(
            await conn.fetch(
                "SELECT sensor_id, count(*) FROM alerts WHERE sensor_id = ANY($1) AND rule = 'temperature-high' "
                "GROUP BY sensor_id",
                sensors,
            )
        )
        tasks = dict(
            await conn.fetch(
                "SELECT sensor_id, count(*) FROM maintenance_tasks WHERE sensor_id = ANY($1) GROUP BY sensor_id",
                sensors,
            )
        )
        anomalies = dict(
            await conn.fetch(
                "SELECT sensor_id, count(*) FROM anomalies WHERE sensor_id = ANY($1) GROUP BY sensor_id", sensors
            )
        )
    finally:
        await conn.close()
    return {s: (alerts.get(s, 0), tasks.get(s, 0), anomalies.get(s, 0)) for s in sensors}


async def dead_letters(database_url: str) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(to_libpq_url(database_url))
    try:
        return [(r["handler"], r["error"]) for r in await conn.fetch("SELECT handler, error FROM dead_letters")]
    finally:
        await conn.close()


async def consumer_totals(settings: Settings) -> tuple[int, int]:
    """(messages redelivered, messages waiting for an acknowledgement) over every consumer of the stream."""
    from core.events.jetstream import Topology, connect
    from core.runtime.handlers import AGENTS

    nc = await connect(settings, "sm-test-probe")
    try:
        js = nc.jetstream()
        topo = Topology.from_settings(settings)
        redelivered = ack_pending = 0
        for agent in AGENTS:
            for partition in range(topo.partitions):
                info = await js.consumer_info(topo.stream, topo.consumer(agent, partition))
                redelivered += info.num_redelivered or 0
                ack_pending += info.num_ack_pending or 0
        return redelivered, ack_pending
    finally:
        await nc.close()


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
