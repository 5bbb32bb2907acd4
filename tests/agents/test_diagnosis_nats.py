"""The diagnosis agent on the NATS JetStream bus: the API publishes WaveformIngested to the stream, a worker (every
agent, ``diagnosis`` among them) diagnoses the snapshots and its scheduling agent opens one work order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.runtime.bootstrap import bootstrap_worker
from tests.bus.conftest import bus_database_url, bus_settings, serve_api  # noqa: F401
from tests.support.maintenance import connect
from tests.support.nats import NatsServer
from tests.waveforms.support import make_waveform_sensor, snapshot

pytestmark = pytest.mark.slow


async def test_a_worker_diagnoses_snapshots_published_to_the_stream(
    bus_database_url: str,  # noqa: F811
    nats: NatsServer,
    tmp_path: Path,
) -> None:
    settings = bus_settings(bus_database_url, nats.url, tmp_path)
    async with serve_api(settings) as api:
        worker = bootstrap_worker(settings)  # every agent: the API answers idle only when all consumers are
        await worker.start()
        try:
            api.client.headers.update(api.headers)
            asset_id, sensor_id = await make_waveform_sensor(api.client)
            at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=20)
            for k in range(2):
                response = await api.client.post(
                    "/api/v1/data/waveforms", json=snapshot(sensor_id, at + timedelta(seconds=k), "outer", seed=40 + k)
                )
                assert response.status_code == 202, response.text
            await api.settle()
            items = (await api.client.get(f"/api/v1/sensors/{sensor_id}/diagnoses")).json()["items"]
            assert [i["fault"] for i in items] == ["outer race", "outer race"]
            assert items[0]["alert_id"] == items[1]["alert_id"] is not None
            async with connect(settings) as conn:
                tasks = await conn.fetch("SELECT alert_id FROM maintenance_tasks WHERE asset_id = $1", asset_id)
            assert [t["alert_id"] for t in tasks] == [items[0]["alert_id"]]
        finally:
            await worker.stop()
